"""Fixtures for isolation tests on the real kernel.

Every test gets its own cgroup root name (``emporion-test-<pid>-<n>``) so parallel runs never
collide, marks its processes through an environment variable, and ends with a check that no
process and no cgroup of it remains (cleaning up whatever leaked before failing).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.isolation import (
    Container,
    ContainerLimits,
    Isolation,
    LaunchSpec,
    procfs,
    select_isolation,
)
from agent.isolation.detect import probe_cgroups

RUN_PREFIX = f"emporion-test-{os.getpid()}"
MARKER = "EMPORION_TEST_MARKER"
PATH = "/usr/local/bin:/usr/bin:/bin"
_names = itertools.count()

Start = Callable[..., Container]


def cgroup_mounts() -> list[Path]:
    host = probe_cgroups()
    mounts = list(dict.fromkeys(host.v1.values()))
    return [*mounts, host.v2] if host.v2 is not None else mounts


def leftover_cgroups(root_name: str) -> list[Path]:
    return [mount / root_name for mount in cgroup_mounts() if (mount / root_name).exists()]


def marked_processes(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (descendants inherit it)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for pid in procfs.all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


def _force_cleanup(pids: list[int], cgroups: list[Path]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    for root in cgroups:
        for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            path.rmdir()
        root.rmdir()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_by_this_run() -> Iterator[None]:
    """At the end: no cgroup root of this test run anywhere."""
    yield
    leftovers = [p for mount in cgroup_mounts() for p in mount.glob(f"{RUN_PREFIX}-*")]
    assert leftovers == [], f"cgroups left behind: {leftovers}"


@pytest.fixture
def root_name() -> str:
    return f"{RUN_PREFIX}-{next(_names)}"


@pytest.fixture
def env(root_name: str) -> dict[str, str]:
    return {"PATH": PATH, MARKER: root_name}


@pytest.fixture
def leak_check(root_name: str) -> Iterator[None]:
    """After the test: no process and no cgroup of it may remain."""
    yield
    pids = marked_processes(root_name)
    cgroups = leftover_cgroups(root_name)
    if pids or cgroups:
        _force_cleanup(pids, cgroups)
    assert pids == [], f"processes left behind: {pids}"
    assert cgroups == [], f"cgroups left behind: {cgroups}"


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(f"cgroups and namespaces need root; running as euid {os.geteuid()}")


@pytest.fixture
def cgroup_isolation(root_name: str, tmp_path: Path, leak_check: None) -> Isolation:
    _needs_root()
    isolation = select_isolation("auto", root_name, run_dir=tmp_path / "run")
    if isolation.name == "posix":
        pytest.skip(f"no usable cgroups on this host: {isolation.report.summary()}")
    return isolation


@pytest.fixture
def namespaced_isolation(cgroup_isolation: Isolation) -> Isolation:
    missing = cgroup_isolation.report.missing.get("namespaces/pid")
    if missing is not None:
        pytest.skip(f"PID namespaces unavailable here: {missing}")
    return cgroup_isolation


@pytest.fixture
def posix_isolation(root_name: str, tmp_path: Path, leak_check: None) -> Isolation:
    return select_isolation("posix", root_name, run_dir=tmp_path / "run")


@pytest.fixture
def started(leak_check: None) -> Iterator[list[Container]]:
    """Containers a test started; destroyed at teardown (before the leak check)."""
    containers: list[Container] = []
    yield containers
    for container in containers:
        container.destroy()


@pytest.fixture
def start(tmp_path: Path, env: dict[str, str], started: list[Container]) -> Start:
    """start(isolation, command, **LaunchSpec fields) with a fresh sandbox per container."""
    counter = itertools.count()

    def _start(
        isolation: Isolation,
        command: str | list[str],
        *,
        limits: ContainerLimits | None = None,
        container_id: str | None = None,
        **fields: object,
    ) -> Container:
        container_id = container_id or f"c{next(counter)}"
        sandbox = tmp_path / "sandboxes" / container_id
        sandbox.mkdir(parents=True, exist_ok=True)
        spec = LaunchSpec(
            container_id=container_id,
            argv=[command] if isinstance(command, str) else command,
            env=env,
            sandbox=sandbox,
            limits=limits or ContainerLimits.from_resources(cpus=1, mem_mb=128),
            shell=isinstance(command, str),
            **fields,  # type: ignore[arg-type]
        )
        container = isolation.launch(spec)
        started.append(container)
        return container

    return _start
