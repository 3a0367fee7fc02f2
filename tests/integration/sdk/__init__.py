"""framework_sdk against the real master (a subprocess) and emulated agents."""
