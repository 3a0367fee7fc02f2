"""ContainerLimits: derivation from task resources, the cgroup numbers, validation."""

from __future__ import annotations

import pytest

from agent.isolation import ContainerLimits
from agent.isolation.limits import MIB, MIN_MEMORY_BYTES, RLIMIT_NAMES


def test_from_resources_derives_memory_and_default_pids() -> None:
    limits = ContainerLimits.from_resources(cpus=0.5, mem_mb=256)
    assert limits.cpus == 0.5
    assert limits.mem_bytes == 256 * MIB
    assert limits.pids_max == 4096
    assert dict(limits.rlimits) == {}


def test_memory_has_a_floor_of_32_mib() -> None:
    assert ContainerLimits.from_resources(cpus=1, mem_mb=1).mem_bytes == MIN_MEMORY_BYTES
    assert MIN_MEMORY_BYTES == 32 * MIB


@pytest.mark.parametrize(
    ("cpus", "quota", "shares", "weight"),
    [
        (0.5, 50_000, 512, 50),
        (1.0, 100_000, 1024, 100),
        (2.5, 250_000, 2560, 250),
        (0.001, 1_000, 2, 1),  # quota at least 1 ms, shares at least 2
        (None, None, 1024, 100),  # unlimited: no quota, default shares
    ],
)
def test_cpu_numbers(cpus: float | None, quota: int | None, shares: int, weight: int) -> None:
    limits = ContainerLimits(cpus=cpus, mem_bytes=None)
    assert limits.cpu_quota_us == quota
    assert limits.cpu_shares == shares
    assert limits.cpu_weight == weight


def test_huge_cpu_counts_stay_within_kernel_ranges() -> None:
    limits = ContainerLimits(cpus=10_000, mem_bytes=None)
    assert limits.cpu_shares == 262_144
    assert limits.cpu_weight == 10_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpus": 0}, "cpus must be a positive number"),
        ({"cpus": float("nan")}, "cpus must be a positive number"),
        ({"mem_bytes": MIB}, "below the minimum of 33554432"),
        ({"pids_max": 0}, "pids_max must be at least 1"),
        ({"rlimits": {"bogus": 1}}, "unknown rlimit bogus"),
        ({"rlimits": {"nofile": -2}}, "rlimit nofile must be an integer >= -1"),
        ({"rlimits": {"nofile": True}}, "rlimit nofile must be an integer >= -1"),
    ],
)
def test_invalid_limits_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"cpus": 1.0, "mem_bytes": 64 * MIB}
    with pytest.raises(ValueError, match=message):
        ContainerLimits(**{**base, **kwargs})  # type: ignore[arg-type]


def test_rlimits_are_copied_and_read_only() -> None:
    source = {"nofile": 1024}
    limits = ContainerLimits(cpus=None, mem_bytes=None, rlimits=source)
    source["nofile"] = 1
    assert limits.rlimits["nofile"] == 1024
    with pytest.raises(TypeError):
        limits.rlimits["core"] = 0  # type: ignore[index]


def test_rlimit_names_cover_the_common_ones() -> None:
    assert {"nofile", "core", "nproc", "stack", "as", "cpu"} <= RLIMIT_NAMES
