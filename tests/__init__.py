"""Emporion's test suite: unit, property, integration, zk and browser tests."""
