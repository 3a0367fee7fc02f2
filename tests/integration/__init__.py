"""Integration tests: real components (gRPC servers on port 0, processes) working together."""
