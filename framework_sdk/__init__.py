"""What framework authors import: Scheduler/Executor base classes, drivers and messages."""
