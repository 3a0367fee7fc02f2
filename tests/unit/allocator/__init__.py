"""Unit tests of the allocator (``master.allocator``), one module per rule family."""
