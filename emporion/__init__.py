"""The ``emporion`` command: local cluster launcher and operator CLI."""
