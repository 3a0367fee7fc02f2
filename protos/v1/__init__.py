"""Generated protobuf and gRPC modules of the Emporion wire contract (v1)."""
