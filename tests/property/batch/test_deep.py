"""The same properties with many more examples (soak: ``pytest -m slow tests/property/batch``).

Runs this directory again in a child pytest with ``EMPORION_BATCH_EXAMPLES`` raised, so the
default run stays short while a deliberate run searches far wider (and shrinks what it finds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_property_with_many_examples() -> None:
    env = {**os.environ, "EMPORION_BATCH_EXAMPLES": os.environ.get("EMPORION_BATCH_DEEP", "60")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE),
         "--deselect", f"{HERE / 'test_deep.py'}::test_every_property_with_many_examples"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
