"""README.md works as written: its shell blocks run, in order, as a new user would run them.

The convention (also stated at the end of the README):

* every fenced ``sh`` block runs, in order, in one ``bash -euo pipefail`` shell whose working
  directory looks like the repository's root (a scratch directory of symlinks to its entries, so
  that files the README asks to create do not land in the checkout);
* a block preceded by ``<!-- file: NAME -->`` is saved as ``NAME`` in that directory first;
* a block preceded by ``<!-- not run: WHY -->`` is skipped (the reason is required);
* ``python`` blocks without ``file:`` are run by ``tests/unit/test_docs_examples.py``.

The shell gets no virtualenv on ``PATH``: the README's ``. .venv/bin/activate`` must do that.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
FENCE = re.compile(
    r"(?:^<!--\s*(?P<mark>not run|file):\s*(?P<arg>.*?)\s*-->\n)?"
    r"^```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    mark: str | None
    arg: str


def blocks(text: str) -> list[Block]:
    return [
        Block(
            line=text.count("\n", 0, m.start("body")),
            lang=m.group("lang"),
            body=m.group("body"),
            mark=m.group("mark"),
            arg=m.group("arg") or "",
        )
        for m in FENCE.finditer(text)
    ]


def test_every_mark_is_well_formed() -> None:
    found = blocks(README.read_text())
    assert found, "README.md has no code blocks"
    for block in found:
        assert block.lang in {"sh", "python"}, f"README.md:{block.line}: unknown language"
        if block.mark == "not run":
            assert block.arg, f"README.md:{block.line}: 'not run' needs a reason"
        if block.mark == "file":
            assert re.fullmatch(r"[\w.-]+", block.arg), f"README.md:{block.line}: bad file name"
    # The marks are HTML comments right above a fence; one anywhere else would be ignored.
    marks = re.findall(r"^<!--\s*(?:not run|file):", README.read_text(), re.MULTILINE)
    assert len(marks) == sum(1 for b in found if b.mark)


def script(found: list[Block]) -> str:
    lines = ["set -euo pipefail"]
    for block in found:
        if block.lang != "sh" or block.mark == "not run":
            continue
        lines.append(f"echo '>>> README.md:{block.line}' >&2")
        lines.append(block.body)
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(
    not (ROOT / ".venv" / "bin" / "activate").is_file(),
    reason="the README activates .venv, which `make demo`/`make test` create; there is none",
)
def test_readme_runs_as_written(tmp_path: Path) -> None:
    for entry in ROOT.iterdir():
        if entry.name != ".git":
            (tmp_path / entry.name).symlink_to(entry)
    found = blocks(README.read_text())
    for block in found:
        if block.mark == "file":
            (tmp_path / block.arg).write_text(block.body)
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "EMPORION_MASTER", "PYTHONPATH"}
    }
    environ["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    result = subprocess.run(
        ["bash", "-c", script(found)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    where = [line for line in result.stderr.splitlines() if line.startswith(">>> README.md:")]
    assert result.returncode == 0, (
        f"the block at {where[-1][4:] if where else '?'} failed ({result.returncode}):\n"
        + result.stdout[-3000:]
        + result.stderr[-3000:]
    )
    # What the README promises each command prints.
    assert "hello-2 finished (3/3)" in result.stdout
    assert "hello from a task" in result.stdout
    assert re.search(r'"finished": 10\b', result.stdout)
    assert "web UI and HTTP API at http://" in result.stdout
    assert re.search(r"^  logs: /\S+/logs ", result.stdout, re.MULTILINE)
