"""select_isolation: pick and build the best isolation this host offers."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from agent.isolation.cgroupfs import CgroupDriver
from agent.isolation.cgroups_v1 import CgroupsV1
from agent.isolation.cgroups_v2 import CgroupsV2
from agent.isolation.detect import HostCgroups, Mode, plan_isolation, probe_cgroups
from agent.isolation.detect import probe_namespaces as _probe_namespaces
from agent.isolation.isolation import ContainerIsolation, Isolation
from agent.isolation.launcher import LaunchHelpers, shared_helpers
from agent.isolation.spec import validate_container_id


def default_run_dir(root_name: str) -> Path:
    """``/run/<root_name>`` as root (cleared at boot, like the containers); else under /tmp."""
    if os.geteuid() == 0 and Path("/run").is_dir():
        return Path("/run") / root_name
    return Path(tempfile.gettempdir()) / f"{root_name}-{os.geteuid()}"


def select_isolation(
    mode: Mode = "auto",
    root_name: str = "emporion",
    *,
    run_dir: Path | None = None,
    host: HostCgroups | None = None,
    fork_server: bool = True,
) -> Isolation:
    """The isolation for ``mode``: cgroups v2, else v1, else posix (``auto``); ``cgroups``
    raises IsolationUnavailableError saying why when neither version can be used.

    Container cgroups go under ``<hierarchy>/<root_name>/``; per-container runtime files under
    ``run_dir`` (default ``default_run_dir(root_name)``). ``host`` replaces detection (tests).
    ``fork_server=False`` spawns a fresh launch helper per container instead of cloning it
    from the process's fork server (slower; the fallback where clones are refused).
    """
    validate_container_id(root_name, "cgroup root name")
    is_linux = sys.platform.startswith("linux")
    euid = os.geteuid()
    if host is None:
        host = probe_cgroups() if is_linux else HostCgroups()
    namespaces_problem: str | None = "posix isolation was selected"
    if not is_linux:
        namespaces_problem = "not Linux"
    elif euid != 0:
        namespaces_problem = f"not root (euid {euid})"
    elif mode != "posix":
        namespaces_problem = _probe_namespaces()
    plan = plan_isolation(
        mode, host, is_linux=is_linux, euid=euid, namespaces_problem=namespaces_problem
    )
    driver: CgroupDriver | None = None
    if plan.kind == "cgroups-v2":
        assert host.v2 is not None
        driver = CgroupsV2(host.v2, root_name, host.v2_controllers)
    elif plan.kind == "cgroups-v1":
        driver = CgroupsV1(host.v1, root_name)
    return ContainerIsolation(
        driver=driver,
        report=plan.report,
        run_dir=run_dir if run_dir is not None else default_run_dir(root_name),
        namespaces=plan.namespaces,
        helpers=shared_helpers() if fork_server else LaunchHelpers(fork_server=False),
    )
