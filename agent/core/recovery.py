"""What the agent reads back from its checkpoint after a restart, as plain data.

:mod:`agent.checkpoint` builds these from the files under ``<work_dir>/meta``;
:func:`agent.core.restart.recover` (the ``RecoverFromCheckpoint`` event) turns them back into
live records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from agent.core.effects import UpdateRecord
from protos.v1 import mesos_pb2

__all__ = [
    "RecoveredAgent",
    "RecoveredExecutor",
    "RecoveredFramework",
    "RecoveredTask",
    "RecoveryPlan",
    "plan_recovery",
]


@dataclass
class RecoveredTask:
    """RecoveredTask: a checkpointed task and the records of its ``task.updates`` log.

    Tasks of the default executor also have ``container_id`` (their nested container),
    ``container_state`` (the isolation's state of it, ``None`` if never recorded) and
    ``group`` (the ids of the tasks launched with it).
    """

    info: mesos_pb2.TaskInfo
    records: list[UpdateRecord] = field(default_factory=list)
    container_id: str | None = None
    container_state: dict[str, object] | None = None
    group: tuple[str, ...] = ()


@dataclass
class RecoveredExecutor:
    """RecoveredExecutor: a checkpointed executor and its latest run.

    ``container_state`` is what the isolation layer's ``Container.state()`` returned at launch
    (``None`` if the agent died before writing it).
    """

    executor_id: str
    info: mesos_pb2.ExecutorInfo
    container_id: str
    container_state: dict[str, object] | None
    tasks: list[RecoveredTask] = field(default_factory=list)


@dataclass
class RecoveredFramework:
    """RecoveredFramework: a checkpointing framework with executors on this agent."""

    framework_id: str
    info: mesos_pb2.FrameworkInfo
    executors: list[RecoveredExecutor] = field(default_factory=list)


@dataclass
class RecoveredAgent:
    """RecoveredAgent: everything checkpointed under one agent id."""

    agent_info: mesos_pb2.AgentInfo
    frameworks: list[RecoveredFramework] = field(default_factory=list)


class RecoveryPlan(Enum):
    """How the agent starts: as a new agent, or by recovering its checkpointed one."""

    FRESH = "fresh"  # Nothing to recover.
    RECOVER = "recover"  # Same boot: reattach to the checkpointed executors.
    CLEANUP_REBOOT = "cleanup: the host rebooted"  # Checkpointed processes died with the boot.
    CLEANUP_ASKED = "cleanup: --recover=cleanup"  # Asked to start clean.


def plan_recovery(
    checkpointed_boot_id: str | None, boot_id: str, has_agent: bool, recover: str
) -> RecoveryPlan:
    """Decide how to start from the checkpoint's boot id, the host's, and ``--recover``."""
    if not has_agent:
        return RecoveryPlan.FRESH
    if recover == "cleanup":
        return RecoveryPlan.CLEANUP_ASKED
    if checkpointed_boot_id != boot_id:
        return RecoveryPlan.CLEANUP_REBOOT
    return RecoveryPlan.RECOVER
