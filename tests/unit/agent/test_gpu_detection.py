"""NVIDIA GPU detection: counted from ``nvidia-smi -L`` when the driver's /proc tree is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.resources_detect import count_nvidia_gpus

NO_DRIVER_PROC = not Path("/proc/driver/nvidia/gpus").exists()


def fake_smi(tmp_path: Path, output: str, status: int = 0) -> Path:
    script = tmp_path / "nvidia-smi"
    lines = "".join(f"echo '{line}'\n" for line in output.splitlines())
    script.write_text(f"#!/bin/sh\n{lines}exit {status}\n")
    script.chmod(0o755)
    return tmp_path


@pytest.mark.skipif(not NO_DRIVER_PROC, reason="this host has an NVIDIA driver; counts are real")
def test_counts_the_gpus_nvidia_smi_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)\n"
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb)\n"
        "  MIG 1g.10gb Device 0: (UUID: MIG-cccc)\n"
    )
    monkeypatch.setenv("PATH", str(fake_smi(tmp_path, listing)))
    assert count_nvidia_gpus() == 2


@pytest.mark.skipif(not NO_DRIVER_PROC, reason="this host has an NVIDIA driver; counts are real")
def test_no_nvidia_smi_means_no_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert count_nvidia_gpus() == 0


@pytest.mark.skipif(not NO_DRIVER_PROC, reason="this host has an NVIDIA driver; counts are real")
def test_a_failing_nvidia_smi_means_no_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_smi(tmp_path, "NVIDIA-SMI has failed\n", status=9)))
    assert count_nvidia_gpus() == 0
