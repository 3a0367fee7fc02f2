"""Integration tests of the master: the real server on port 0, spoken to over gRPC."""
