"""Subcommands of the ``emporion`` command line, one module each with ``register(subparsers)``."""
