"""The Isolation interface the agent uses, and its one implementation over a cgroup driver.

``ContainerIsolation`` with a ``CgroupsV2``/``CgroupsV1`` driver is "cgroups-v2"/"cgroups-v1";
without a driver it is "posix" (sessions only). Per container it keeps a run directory
``<run_dir>/<container_id>/`` (mode 0700) holding ``intent.json`` (the container's id, cgroups
and run directory, written before the launch helper is started, and locked until the helper has
recorded its pids), ``pids.json`` (the helper's pid and start time, written by the helper before
it runs anything), ``state.json`` (the complete state, once the launch is done) and
``exit_status`` (the task's wait status, written by the helper, which stays as the task's
supervisor); it is removed with the container.

Those files make a launch crash-consistent: an agent killed while a launch was in progress
(before it checkpointed the container) calls :meth:`ContainerIsolation.find` after its restart,
which adopts the container if its helper started (identified by pid and start time; a helper
still starting holds the intent's lock and is awaited) or removes what was made for it if its
task never ran.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
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
from agent.isolation.launcher import LAUNCH_TIMEOUT_S, LaunchHelpers, shared_helpers
from agent.isolation.posix import SessionConfinement
from agent.isolation.spec import LaunchSpec, validate_container_id
from agent.isolation.state import ContainerState

STATE_FILE = "state.json"
INTENT_FILE = "intent.json"
PIDS_FILE = "pids.json"
_FIND_POLL_S = 0.02


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

    def find(self, container_id: str) -> Container | None:
        """After a restart, the container of a launch the agent never recorded as done.

        Its handle (running, or ended: ``poll()`` says how) if its launch helper was spawned;
        None, having removed whatever was made for it, if its command never ran.
        """
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
        helpers: LaunchHelpers | None = None,
    ) -> None:
        self.name = driver.name if driver is not None else "posix"
        self.report = report
        self.run_dir = Path(run_dir)
        self.namespaces = namespaces
        self.helpers = helpers if helpers is not None else shared_helpers()
        """Where launch helpers come from: the process's fork server by default."""
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
        try:
            self.run_dir.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            # Not empty: a container still has its run directory, so its cgroups are still
            # there too. (Trying the roots anyway would take the kernel's cgroup mutex five
            # times per exit, to fail.)
            return
        if self._driver is not None:
            self._driver.remove_root_if_empty()

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
        lock_fd: int | None = None
        try:
            if self._driver is not None:
                cgroups = self._driver.create(spec.container_id, spec.limits)
            intent = ContainerState(
                container_id=spec.container_id,
                isolation=self.name,
                pid=0,  # Not started yet: the helper records its pid in PIDS_FILE.
                start_time=0,
                sandbox=str(spec.sandbox),
                cgroups=tuple(str(path) for path in cgroups.paths) if cgroups else (),
                namespaces=namespaces,
                run_dir=str(run),
                supervised=True,
            )
            _write_atomically(run / INTENT_FILE, intent.to_json())
            # Held (through the request, then by the helper) until the helper recorded its
            # pids: how a restarted agent's ``find`` knows a launch is still starting.
            lock_fd = os.open(run / INTENT_FILE, os.O_RDONLY | os.O_CLOEXEC)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            helper_spec = self._helper_spec(spec, cgroups, namespaces, run)
            started = self.helpers.start(helper_spec, spec.stderr_path, lock_fd)
            if started.pid == 0:
                raise IsolationError(started.error or "no launch helper was started")
        except (IsolationError, OSError, ValueError) as e:
            if cgroups is not None:
                cgroups.remove(time.monotonic())
            shutil.rmtree(run, ignore_errors=True)
            self._remove_root_if_empty()
            detail = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) else str(e)
            raise LaunchError(f"{failed}: {detail}") from e
        finally:
            if lock_fd is not None:
                os.close(lock_fd)
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
            supervised=True,
            on_destroyed=self._remove_root_if_empty,
        )
        if started.error is not None:
            container.destroy()
            raise LaunchError(f"{failed}: {started.error}")
        _write_atomically(run / STATE_FILE, container.state().to_json())
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
            "readonly_dirs": [str(d) for d in spec.readonly_dirs],
            # Bound writable before the read-only directories: the sandbox, and the run
            # directory where the helper (sharing the mount namespace) records the exit.
            "writable_dirs": [
                str(d)
                for d in (spec.sandbox, run)
                if any(d.is_relative_to(r) for r in spec.readonly_dirs)
            ],
            "status_file": str(run / EXIT_STATUS_FILE),
            "pid_file": str(run / PIDS_FILE),
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

    def find(self, container_id: str) -> Container | None:
        validate_container_id(container_id)
        run = self.run_dir / container_id
        state = _read_state(run / STATE_FILE)  # The launch was done; the agent died after.
        if state is None:
            intent = _read_state(run / INTENT_FILE)
            pids = self._helper_pids(run) if intent is not None else None
            if intent is not None and pids is not None:
                state = _with_pids(intent, pids)
        if state is None or state.isolation != self.name:
            # Its helper was never spawned, or died before it ran anything.
            self._destroy_orphan(container_id)
            return None
        _write_atomically(run / STATE_FILE, state.to_json())
        return self._container_for(state)

    @staticmethod
    def _helper_pids(run: Path) -> _Pids | None:
        """The helper's recorded identity; waits for it while a helper of this launch is
        still starting (the intent file is locked until the helper recorded its pids, or
        gave up); None if there is none."""
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while True:
            pids = _read_pids(run / PIDS_FILE)
            if pids is not None or time.monotonic() >= deadline or not _locked(run / INTENT_FILE):
                return pids or _read_pids(run / PIDS_FILE)  # It may have written it, then ended.
            time.sleep(_FIND_POLL_S)

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
        state = _read_state(run / STATE_FILE)
        if state is None:
            intent, pids = _read_state(run / INTENT_FILE), _read_pids(run / PIDS_FILE)
            if intent is not None and pids is not None:
                state = _with_pids(intent, pids)
        if state is not None and state.isolation == self.name:
            self._container_for(state).destroy()
            return
        # Launched by an agent that died before recording it: kill by cgroup alone.
        cgroups = self._driver.open(container_id) if self._driver is not None else None
        if cgroups is not None:
            deadline = time.monotonic() + DESTROY_TIMEOUT_S
            destroy_processes(cgroups, deadline, container_id)
            cgroups.remove(deadline)
        shutil.rmtree(run, ignore_errors=True)
        self._remove_root_if_empty()


def _locked(path: Path) -> bool:
    """Whether someone holds the lock on ``path`` (a launch of it is still starting)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # Releases it if we took it.
    return False


def _write_atomically(path: Path, text: str) -> None:
    """A temporary file renamed over ``path``: a restarted agent reads all of it or none."""
    temp = f"{path.parent}/.{path.name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(temp, path)


def _read_state(path: Path) -> ContainerState | None:
    try:
        return ContainerState.from_json(path.read_text())
    except (OSError, ValueError):
        return None


_Pids = tuple[int, int, int | None]
"""The launch helper's ``pid``, ``start_time`` and ``init_pid``."""


def _with_pids(intent: ContainerState, pids: _Pids) -> ContainerState:
    pid, start_time, init_pid = pids
    return dataclasses.replace(intent, pid=pid, start_time=start_time, init_pid=init_pid)


def _read_pids(path: Path) -> _Pids | None:
    """``pid``, ``start_time`` and ``init_pid`` as the launch helper recorded them."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    pid, start_time, init_pid = record.get("pid"), record.get("start_time"), record.get("init_pid")
    if not isinstance(pid, int) or not isinstance(start_time, int) or pid <= 0:
        return None
    if init_pid is not None and not isinstance(init_pid, int):
        return None
    return pid, start_time, init_pid
