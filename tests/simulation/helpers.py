"""Running ``python -m bench.simulation`` as a real process, as CI and a developer do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def simulate(*args: str, timeout: float = 600) -> tuple[int, dict[str, Any], str]:
    """Run the simulation command; (exit status, its JSON object, its stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.simulation", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the simulation (status {done.returncode}): {done.stderr[-2000:]}"
    figures: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, figures, done.stderr
