"""Unit and transport-level tests of framework_sdk's executor side (Executor, ExecutorDriver)."""
