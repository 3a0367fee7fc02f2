"""The Emporion master: allocator, state machine, registry, servers."""
