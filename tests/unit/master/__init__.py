"""Unit tests of the master: its sans-I/O state machine, registry and configuration."""
