"""Pure unit tests: no network, no subprocesses."""
