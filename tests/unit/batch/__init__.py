"""The batch engine without a cluster: stages, placement, partitioners, shuffle files."""
