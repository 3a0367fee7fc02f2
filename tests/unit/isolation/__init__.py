"""Unit tests of agent.isolation: limits, specs, state, detection, the v2 writer on a fake tree."""
