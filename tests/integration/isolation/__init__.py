"""Isolation on the real kernel: launched processes, cgroups, namespaces, OOM kills, recovery."""
