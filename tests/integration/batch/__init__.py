"""The batch framework (examples.batch) end to end on a real local cluster."""
