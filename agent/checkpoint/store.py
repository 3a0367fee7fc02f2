"""CheckpointStore: writes the agent's checkpoint and reads it back after a restart.

Writes are atomic (see :mod:`agent.checkpoint.files`); the layout is in
:mod:`agent.checkpoint.paths`. Reading is forgiving: a file that is missing or unreadable drops
what depends on it (with a warning in :attr:`Checkpoint.warnings`) instead of failing the
recovery, and a torn tail of a ``task.updates`` log is cut off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from agent.checkpoint import paths
from agent.checkpoint.files import (
    append_update_record,
    atomic_write,
    read_update_log,
    truncate_log,
)
from agent.core.effects import UpdateRecord
from agent.core.recovery import (
    RecoveredAgent,
    RecoveredExecutor,
    RecoveredFramework,
    RecoveredTask,
)
from protos.v1 import mesos_pb2

__all__ = ["Checkpoint", "CheckpointStore", "read_host_boot_id"]

log = logging.getLogger(__name__)

_M = TypeVar("_M", bound=Message)


def read_host_boot_id() -> str:
    """This host's boot id (changes at every reboot); the hostname's if the kernel has none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"no-boot-id:{os.uname().nodename}"


@dataclass
class Checkpoint:
    """What :meth:`CheckpointStore.read` found: the boot id and agent it recorded, if any."""

    boot_id: str | None
    agent: RecoveredAgent | None
    warnings: list[str] = field(default_factory=list)


def _replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old)."""
    temp = link.with_name(f".{link.name}.tmp.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    os.symlink(target, temp)
    os.replace(temp, link)


class CheckpointStore:
    """CheckpointStore reads and writes ``<work_dir>/meta`` and creates sandboxes.

    ``agent_id`` must be set (by :meth:`write_agent` or :meth:`read`) before anything below the
    agent's directory is written.
    """

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.agent_id: str | None = None

    def _agent(self) -> str:
        if self.agent_id is None:
            raise RuntimeError("no agent id yet: the agent is not registered")
        return self.agent_id

    # -- writes --

    def write_boot_id(self, boot_id: str) -> None:
        """Record the host boot id the agent runs under."""
        atomic_write(paths.boot_id_path(self.work_dir), boot_id.encode())

    def write_agent(self, info: mesos_pb2.AgentInfo) -> None:
        """Record the registered agent (``info.id`` set) and make it the one to recover."""
        self.agent_id = info.id.value
        atomic_write(paths.agent_info_path(self.work_dir, self.agent_id), _encode(info))
        _replace_symlink(paths.latest_agent_link(self.work_dir), self.agent_id)

    def write_executor_port(self, port: int) -> None:
        """Record the executor API's port, so executors find the agent again after a restart."""
        atomic_write(paths.executor_port_path(self.work_dir, self._agent()), str(port).encode())

    def read_executor_port(self) -> int | None:
        """The executor API port recorded for this agent, if any."""
        try:
            text = paths.executor_port_path(self.work_dir, self._agent()).read_text()
            return int(text)
        except (OSError, ValueError):
            return None

    def write_framework(self, framework_id: str, info: mesos_pb2.FrameworkInfo) -> None:
        """Write ``framework.info``."""
        path = paths.framework_info_path(self.work_dir, self._agent(), framework_id)
        atomic_write(path, _encode(info))

    def write_executor(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        info: mesos_pb2.ExecutorInfo,
    ) -> None:
        """Write ``executor.info`` and start a run directory, pointing ``runs/latest`` at it."""
        agent = self._agent()
        atomic_write(
            paths.executor_info_path(self.work_dir, agent, framework_id, executor_id),
            _encode(info),
        )
        run = paths.run_meta_dir(self.work_dir, agent, framework_id, executor_id, container_id)
        run.mkdir(parents=True, exist_ok=True)
        _replace_symlink(run.parent / paths.LATEST, container_id)

    def write_task(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        info: mesos_pb2.TaskInfo,
        *,
        nested_container_id: str | None = None,
        group: Sequence[str] = (),
    ) -> None:
        """Write a task's ``task.info`` (and, for the default executor, ``task.container``).

        ``task.container`` is written first, so a task whose ``task.info`` is there always has
        its container id recorded.
        """
        where = (self.work_dir, self._agent(), framework_id, executor_id, container_id)
        task_id = info.task_id.value
        if nested_container_id is not None:
            record = {"container_id": nested_container_id, "group": list(group)}
            payload = json.dumps(record, sort_keys=True).encode()
            atomic_write(paths.task_container_path(*where, task_id=task_id), payload)
        atomic_write(paths.task_info_path(*where, task_id=task_id), _encode(info))

    def append_update(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        task_id: str,
        record: UpdateRecord,
    ) -> None:
        """Append a record to a task's ``task.updates`` (fsync'd)."""
        path = paths.task_updates_path(
            self.work_dir, self._agent(), framework_id, executor_id, container_id, task_id=task_id
        )
        append_update_record(path, record)

    def write_container_state(
        self, framework_id: str, executor_id: str, container_id: str, state: dict[str, object]
    ) -> None:
        """Write ``container.state``: how to find the container again."""
        path = paths.container_state_path(
            self.work_dir, self._agent(), framework_id, executor_id, container_id
        )
        atomic_write(path, json.dumps(state, sort_keys=True).encode())

    def write_task_container_state(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        task_id: str,
        state: dict[str, object],
    ) -> None:
        """Write a default executor task's ``container.state`` (``container_id``: the run)."""
        path = paths.task_container_state_path(
            self.work_dir, self._agent(), framework_id, executor_id, container_id, task_id=task_id
        )
        atomic_write(path, json.dumps(state, sort_keys=True).encode())

    def exit_status_path(self, framework_id: str, executor_id: str, container_id: str) -> Path:
        """Where a checkpointed container's init process records its exit status."""
        return paths.exit_status_path(
            self.work_dir, self._agent(), framework_id, executor_id, container_id
        )

    def remove_executor(self, framework_id: str, executor_id: str) -> None:
        """Delete a finished executor's checkpoint."""
        path = paths.executor_meta_dir(self.work_dir, self._agent(), framework_id, executor_id)
        shutil.rmtree(path, ignore_errors=True)

    def remove_framework(self, framework_id: str) -> None:
        """Delete a framework's checkpoint (it has nothing left on this agent)."""
        path = paths.framework_meta_dir(self.work_dir, self._agent(), framework_id)
        shutil.rmtree(path, ignore_errors=True)

    def clear_agents(self) -> None:
        """Forget every checkpointed agent (start clean); sandboxes stay for the GC."""
        shutil.rmtree(paths.agents_meta_dir(self.work_dir), ignore_errors=True)
        self.agent_id = None

    def make_sandbox(self, framework_id: str, executor_id: str, container_id: str) -> Path:
        """Create a run's sandbox (with ``runs/latest`` pointing at it) and return its path."""
        sandbox = paths.sandbox_dir(
            self.work_dir, self._agent(), framework_id, executor_id, container_id
        )
        sandbox.mkdir(parents=True, exist_ok=True)
        _replace_symlink(sandbox.parent / paths.LATEST, container_id)
        return sandbox

    def sandbox_path(self, framework_id: str, executor_id: str, container_id: str) -> Path:
        """A run's sandbox path (whether or not it exists)."""
        return paths.sandbox_dir(
            self.work_dir, self._agent(), framework_id, executor_id, container_id
        )

    def task_sandbox_path(
        self, framework_id: str, executor_id: str, container_id: str, task_id: str
    ) -> Path:
        """A default executor task's sandbox in run ``container_id`` (whether or not it exists)."""
        return paths.task_sandbox_dir(
            self.work_dir, self._agent(), framework_id, executor_id, container_id, task_id=task_id
        )

    # -- reads --

    def read(self) -> Checkpoint:
        """Read back the boot id and the latest agent's frameworks, executors and tasks."""
        warnings: list[str] = []
        try:
            boot_id: str | None = paths.boot_id_path(self.work_dir).read_text().strip()
        except OSError:
            boot_id = None
        link = paths.latest_agent_link(self.work_dir)
        try:
            agent_id = os.readlink(link)
        except OSError:
            return Checkpoint(boot_id, None, warnings)
        info = _read_proto(
            paths.agent_info_path(self.work_dir, agent_id), mesos_pb2.AgentInfo, warnings
        )
        if info is None or info.id.value != agent_id:
            warnings.append(f"agent {agent_id}: agent.info missing or wrong; not recovering it")
            return Checkpoint(boot_id, None, warnings)
        self.agent_id = agent_id
        agent = RecoveredAgent(info)
        frameworks_dir = paths.agent_meta_dir(self.work_dir, agent_id) / "frameworks"
        for framework_dir in _subdirs(frameworks_dir):
            framework = self._read_framework(framework_dir, warnings)
            if framework is not None:
                agent.frameworks.append(framework)
        for warning in warnings:
            log.warning("Checkpoint: %s", warning)
        return Checkpoint(boot_id, agent, warnings)

    def _read_framework(self, directory: Path, warnings: list[str]) -> RecoveredFramework | None:
        info = _read_proto(directory / "framework.info", mesos_pb2.FrameworkInfo, warnings)
        if info is None:
            return None
        framework = RecoveredFramework(directory.name, info)
        for executor_dir in _subdirs(directory / "executors"):
            executor = self._read_executor(executor_dir, warnings)
            if executor is not None:
                framework.executors.append(executor)
        return framework

    def _read_executor(self, directory: Path, warnings: list[str]) -> RecoveredExecutor | None:
        info = _read_proto(directory / "executor.info", mesos_pb2.ExecutorInfo, warnings)
        if info is None:
            return None
        try:
            container_id = os.readlink(directory / "runs" / paths.LATEST)
        except OSError:
            warnings.append(f"{directory}: no runs/latest; the executor never started")
            return None
        run = directory / "runs" / container_id
        state = _read_json(run / "container.state", warnings)
        executor = RecoveredExecutor(directory.name, info, container_id, state)
        for task_dir in _subdirs(run / "tasks"):
            task_info = _read_proto(task_dir / "task.info", mesos_pb2.TaskInfo, warnings)
            if task_info is None:
                continue
            log_path = task_dir / "task.updates"
            records, good, torn = read_update_log(log_path)
            if torn:
                warnings.append(f"{log_path}: dropped a torn record after byte {good}")
                truncate_log(log_path, good)
            task = RecoveredTask(task_info, records)
            nested = _read_json(task_dir / "task.container", warnings)
            if nested is not None:
                nested_id, group = nested.get("container_id"), nested.get("group")
                if isinstance(nested_id, str) and nested_id:
                    task.container_id = nested_id
                if isinstance(group, list) and all(isinstance(t, str) for t in group):
                    task.group = tuple(group)
                task.container_state = _read_json(task_dir / "container.state", warnings)
            executor.tasks.append(task)
        return executor


def _encode(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


def _read_proto(path: Path, kind: type[_M], warnings: list[str]) -> _M | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        warnings.append(f"{path} is missing")
        return None
    except OSError as error:
        warnings.append(f"{path} is unreadable: {error}")
        return None
    message = kind()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        warnings.append(f"{path} is not a valid {kind.__name__}: {error}")
        return None
    return message


def _read_json(path: Path, warnings: list[str]) -> dict[str, object] | None:
    """A JSON object from ``path``; None if the file is missing (or unreadable: a warning)."""
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        warnings.append(f"{path} unreadable: {error}")
        return None
    if not isinstance(loaded, dict):
        warnings.append(f"{path} does not hold a JSON object")
        return None
    return loaded


def _subdirs(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        return []
