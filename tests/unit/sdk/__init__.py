"""Unit and transport-level tests of framework_sdk (the scheduler side of the SDK)."""
