"""What the agent offers when ``--resources`` does not say: cores, memory, disk, ports, GPUs.

The rules are Mesos's (``src/slave/containerizer/containerizer.cpp``): all usable cores;
memory less 1 GiB left for the system (half of it on hosts with under 2 GiB); the work
directory's file system less 5 GiB (half of it under 10 GiB); ports 31000-32000; and NVIDIA
GPUs when the driver shows some. Names given in ``--resources`` win over detected ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from protos.resources import Resources

__all__ = ["DEFAULT_PORTS", "count_nvidia_gpus", "detect_resources", "merge_resources"]

DEFAULT_PORTS = "[31000-32000]"
_GIB_MB = 1024


def _cpus() -> float:
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)


def _memory_mb() -> float:
    total = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) / 1024  # kB -> MB
                break
    except OSError:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    if total >= 2 * _GIB_MB:
        return total - _GIB_MB
    return total / 2


def _disk_mb(work_dir: Path) -> float:
    probe = work_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    total = shutil.disk_usage(probe).total / 2**20
    if total >= 10 * _GIB_MB:
        return total - 5 * _GIB_MB
    return total / 2


def count_nvidia_gpus() -> int:
    """The number of NVIDIA GPUs the driver reports (0 without a driver)."""
    proc = Path("/proc/driver/nvidia/gpus")
    try:
        found = sum(1 for p in proc.iterdir() if p.is_dir())
        if found:
            return found
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def detect_resources(work_dir: Path) -> Resources:
    """This host's resources by the rules above (whole MBs, GPUs only if present)."""
    text = (
        f"cpus:{_cpus():g};mem:{int(_memory_mb())};disk:{int(_disk_mb(work_dir))};"
        f"ports:{DEFAULT_PORTS}"
    )
    gpus = count_nvidia_gpus()
    if gpus:
        text += f";gpus:{gpus}"
    return Resources.parse(text)


def merge_resources(explicit: Resources | None, detected: Resources) -> Resources:
    """``explicit`` plus every detected resource whose name ``explicit`` does not mention."""
    if explicit is None:
        return detected
    names = explicit.names()
    return explicit + detected.filter(lambda key: key.name not in names)
