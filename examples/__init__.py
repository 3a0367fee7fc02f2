"""Example frameworks built only on framework_sdk; each runs with `python -m examples.<name>`."""
