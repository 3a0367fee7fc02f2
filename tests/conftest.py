"""Test-suite-wide settings: soak tests (``@pytest.mark.slow``) are skipped unless asked for.

They run many minutes each (the chaos suite's 20-run soaks, the simulator's thousands of seeds),
so a plain ``pytest`` — and ``make test`` — skips them, saying how to run them: select them by
marker (``pytest -m slow tests/chaos``) or set ``EMPORION_SOAK=1``.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip slow tests unless the marker expression or EMPORION_SOAK asks for them."""
    expression = config.getoption("markexpr") or ""
    if os.environ.get("EMPORION_SOAK") or ("slow" in expression and "not slow" not in expression):
        return
    skip = pytest.mark.skip(reason="soak test: run with -m slow or EMPORION_SOAK=1")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
