"""``bench.launch_throughput --api http``: its frameworks run whole on Mesos's HTTP API.

A small run (a real master process, emulated agents) in each encoding must finish every task,
with every update acknowledged over HTTP before the agents' retry (no resent update), and print
the benchmark's JSON with ``api`` and ``http_content``. Figures are not asserted (speed is for
the benchmark to print, docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.scheduler_http.test_pymesos import ROOT


@pytest.mark.parametrize("content", ["json", "protobuf"])
def test_a_small_run_finishes_every_task_over_http(content: str) -> None:
    args = ["--api", "http", "--http-content", content, "--agents", "4", "--frameworks", "2"]
    args += ["--tasks", "60", "--timeout", "60", "--update-retry", "30"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.launch_throughput", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in figures
    assert (figures["api"], figures["http_content"]) == ("http", content)
    assert figures["tasks_finished_per_s"] is not None
    assert figures["updates_sent"] == 2 * 60  # RUNNING and FINISHED, each acknowledged once.
    assert figures["updates_retried"] == 0
    assert figures["accept_calls"] >= 1
