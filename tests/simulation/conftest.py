"""The simulator's soak (``slow``: thousands of seeds, minutes) runs only when asked for by marker
(``pytest -m slow tests/simulation``) or with ``EMPORION_SOAK=1``; a plain ``pytest`` skips it,
saying so. The 500-seed run of the default suite is not marked slow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's slow tests unless the marker expression or EMPORION_SOAK asks."""
    expression = config.getoption("markexpr") or ""
    if os.environ.get("EMPORION_SOAK") or ("slow" in expression and "not slow" not in expression):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="soak test: run with -m slow or EMPORION_SOAK=1")
    for item in items:
        if item.get_closest_marker("slow") is not None and here in item.path.parents:
            item.add_marker(skip)
