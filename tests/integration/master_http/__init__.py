"""Integration tests of the master's HTTP API: real servers and real HTTP."""
