"""The Emporion agent: executors, isolation, status updates, checkpointing and recovery."""
