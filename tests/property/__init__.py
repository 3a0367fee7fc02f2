"""Hypothesis property tests of invariants."""
