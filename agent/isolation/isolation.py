"""The Isolation interface the agent uses, and its one implementation over a cgroup driver.

``ContainerIsolation`` with a ``CgroupsV2``/``CgroupsV1`` driver is "cgroups-v2"/"cgroups-v1";
without a driver it is "posix" (sessions only). Per container it keeps a run directory
``<run_dir>/<container_id>/`` (mode 0700) holding ``launch.json`` (the helper's spec, deleted
once the task runs: it holds the environment), ``state.json`` (to find orphans after a
restart) and ``exit_status`` (written by the helper when it stays as the namespace's parent);
it is removed with the container.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import time
from pathlib import Path
from typing import Protocol

from agent.isolation import cgroupfs, procfs
from agent.isolation.cgroupfs import CgroupDriver
from agent.isolation.confinement import Confinement
from agent.isolation.container import (
    DESTROY_TIMEOUT_S,
    EXIT_STATUS_FILE,
    Container,
    destroy_processes,
)
from agent.isolation.detect import IsolationReport
from agent.isolation.errors import IsolationError, LaunchError
from agent.isolation.launcher import start_helper, write_spec
from agent.isolation.posix import SessionConfinement
from agent.isolation.spec import LaunchSpec, validate_container_id
from agent.isolation.state import ContainerState

STATE_FILE = "state.json"
SPEC_FILE = "launch.json"


class Isolation(Protocol):
    """Starts, reattaches to and cleans up containers; one per agent."""

    @property
    def name(self) -> str:
        """``cgroups-v2``, ``cgroups-v1`` or ``posix``."""
        ...

    @property
    def report(self) -> IsolationReport:
        """What is isolated on this host and what is missing, for the startup log."""
        ...

    def launch(self, spec: LaunchSpec) -> Container:
        """Start a container; LaunchError names what failed and leaves nothing behind."""
        ...

    def recover(self, state: ContainerState) -> Container | None:
        """Reattach after an agent restart; None (having cleaned up) if the process is gone."""
        ...

    def cleanup_orphans(self, known: set[str]) -> list[str]:
        """Destroy our containers whose ids are not in ``known``; return their ids."""
        ...


class ContainerIsolation:
    """Isolation over an optional cgroup driver, with or without PID and mount namespaces."""

    def __init__(
        self,
        *,
        driver: CgroupDriver | None,
        report: IsolationReport,
        run_dir: Path,
        namespaces: bool,
    ) -> None:
        self.name = driver.name if driver is not None else "posix"
        self.report = report
        self.run_dir = Path(run_dir)
        self.namespaces = namespaces
        self._driver = driver

    def __repr__(self) -> str:
        return f"ContainerIsolation({self.name!r}, run_dir={str(self.run_dir)!r})"

    def _use_namespaces(self, spec: LaunchSpec) -> bool:
        if spec.namespaces is None:
            return self.namespaces
        if spec.namespaces and not self.namespaces:
            reason = self.report.missing.get("namespaces/pid", "unavailable")
            raise LaunchError(
                f"cannot launch container {spec.container_id}: PID and mount namespaces were "
                f"requested but are unavailable ({reason})"
            )
        return spec.namespaces

    def _check_launchable(self, spec: LaunchSpec) -> None:
        failed = f"cannot launch container {spec.container_id}"
        if spec.user is not None:
            try:
                entry = pwd.getpwnam(spec.user)
            except KeyError:
                raise LaunchError(f"{failed}: user {spec.user!r} does not exist") from None
            if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
                raise LaunchError(f"{failed}: running as user {spec.user!r} needs root")
        if not spec.sandbox.is_dir():
            raise LaunchError(f"{failed}: sandbox {spec.sandbox} is not a directory")

    def _remove_root_if_empty(self) -> None:
        """Remove what this isolation made for containers once none is left: the cgroup root
        and the run directory (``/run/emporion-<hash>``), so that an agent leaves nothing
        behind when its last container goes."""
        if self._driver is not None:
            self._driver.remove_root_if_empty()
        with contextlib.suppress(OSError):  # Not empty (or gone): a container still has it.
            self.run_dir.rmdir()

    def _make_run(self, run: Path) -> None:
        """Create a container's run directory (and the isolation's, which a container that
        ended meanwhile may remove while empty: then try again)."""
        for _ in range(3):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                run.mkdir(mode=0o700)
                return
            except FileNotFoundError:
                continue
        run.mkdir(mode=0o700)

    def launch(self, spec: LaunchSpec) -> Container:
        failed = f"cannot launch container {spec.container_id}"
        namespaces = self._use_namespaces(spec)
        self._check_launchable(spec)
        run = self.run_dir / spec.container_id
        try:
            self._make_run(run)
        except FileExistsError:
            raise LaunchError(f"{failed}: it already exists ({run})") from None
        except OSError as e:
            raise LaunchError(f"{failed}: cannot create {run}: {e.strerror}") from e
        cgroups: Confinement | None = None
        try:
            if self._driver is not None:
                cgroups = self._driver.create(spec.container_id, spec.limits)
            write_spec(run / SPEC_FILE, self._helper_spec(spec, cgroups, namespaces, run))
            started = start_helper(run / SPEC_FILE, spec.stderr_path)
        except (IsolationError, OSError) as e:
            if cgroups is not None:
                cgroups.remove(time.monotonic())
            shutil.rmtree(run, ignore_errors=True)
            self._remove_root_if_empty()
            detail = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) else str(e)
            raise LaunchError(f"{failed}: {detail}") from e
        container = Container(
            container_id=spec.container_id,
            pid=started.pid,
            start_time=started.start_time,
            isolation=self.name,
            sandbox=spec.sandbox,
            confinement=cgroups or SessionConfinement(started.pid, started.start_time),
            namespaces=namespaces,
            init_pid=started.init_pid,
            run_dir=run,
            on_destroyed=self._remove_root_if_empty,
        )
        if started.error is not None:
            container.destroy()
            raise LaunchError(f"{failed}: {started.error}")
        # The helper has read its spec; it holds the task's environment, so do not keep it.
        (run / SPEC_FILE).unlink(missing_ok=True)
        (run / STATE_FILE).write_text(container.state().to_json())
        return container

    @staticmethod
    def _helper_spec(
        spec: LaunchSpec, cgroups: Confinement | None, namespaces: bool, run: Path
    ) -> dict[str, object]:
        return {
            "argv": spec.command,
            "env": dict(spec.env),
            "cwd": str(spec.sandbox),
            "stdout": str(spec.stdout_path),
            "stderr": str(spec.stderr_path),
            "cgroup_procs": [str(p) for p in cgroups.procs_files] if cgroups else [],
            "rlimits": dict(spec.limits.rlimits),
            "user": spec.user,
            "namespaces": namespaces,
            "status_file": str(run / EXIT_STATUS_FILE),
        }

    def _container_for(self, state: ContainerState) -> Container:
        cgroups = self._driver.open(state.container_id) if self._driver is not None else None
        confinement = cgroups or SessionConfinement(state.pid, state.start_time)
        return Container.from_state(state, confinement, self._remove_root_if_empty)

    def recover(self, state: ContainerState) -> Container | None:
        validate_container_id(state.container_id)
        if state.isolation != self.name:
            raise ValueError(
                f"container {state.container_id} was launched with {state.isolation} isolation; "
                f"this agent uses {self.name}"
            )
        container = self._container_for(state)
        if procfs.is_running(state.pid, state.start_time):
            return container
        container.destroy()
        return None

    def cleanup_orphans(self, known: set[str]) -> list[str]:
        ids = cgroupfs.child_ids(self.run_dir)
        if self._driver is not None:
            ids |= self._driver.container_ids()
        orphans = sorted(ids - set(known))
        for container_id in orphans:
            self._destroy_orphan(container_id)
        if not known:
            self._remove_root_if_empty()
        return orphans

    def _destroy_orphan(self, container_id: str) -> None:
        run = self.run_dir / container_id
        try:
            state = ContainerState.from_json((run / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = None
        if state is not None and state.isolation == self.name:
            self._container_for(state).destroy()
            return
        # Launched by an agent that died before recording it: kill by cgroup alone.
        cgroups = self._driver.open(container_id) if self._driver is not None else None
        if cgroups is not None:
            deadline = time.monotonic() + DESTROY_TIMEOUT_S
            destroy_processes(cgroups, deadline, container_id)
            cgroups.remove(deadline)
            self._remove_root_if_empty()
        shutil.rmtree(run, ignore_errors=True)
