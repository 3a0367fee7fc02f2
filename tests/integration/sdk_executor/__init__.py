"""framework_sdk's executor side with real agents (and masters) as subprocesses."""
