"""Tests of the agent emulator (``emporion.testing``): its protocol side and against a master."""
