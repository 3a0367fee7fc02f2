"""``python -m bench.ui_hub`` runs the real hub over a real master and prints its figures."""

from __future__ import annotations

import json

import pytest

from bench import ui_hub


def test_the_hub_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tasks", "2000", "--viewers", "3", "--rate", "1000", "--seconds", "2"]
    assert ui_hub.main(argv) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["benchmark"] == "ui_hub"
    assert figures["viewers"] == 3
    for name in ("listener_us_per_update", "flush_ms", "cpu_ms_per_second", "share_of_a_core"):
        assert figures[name] >= 0, name
    assert figures["flush_ms"] > 0  # every viewer got a batch: the flush did work


def test_bad_sizes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        ui_hub.main(["--viewers", "0"])
    assert stop.value.code == 2
    assert "--viewers" in capsys.readouterr().err
