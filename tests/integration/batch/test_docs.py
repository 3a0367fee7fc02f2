"""The ```py examples of docs/batch.md run on a real two-agent cluster (MASTER is its master).

They are ```py rather than ```python blocks so that the fast docs test
(tests/unit/test_docs_examples.py), which has no cluster, leaves them to this one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "batch.md"
BLOCKS = re.findall(r"^```py\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_documented_example_runs(master: str, index: int) -> None:
    from examples.batch import BatchContext

    namespace = {"MASTER": master, "BatchContext": BatchContext, "__name__": f"batch_doc_{index}"}
    exec(compile(BLOCKS[index], f"docs/batch.md#{index}", "exec"), namespace)
