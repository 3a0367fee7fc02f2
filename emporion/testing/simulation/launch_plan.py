"""What a simulated scheduler puts in an ACCEPT: the operations that launch one intent on one
offer (a RESERVE first if asked, a LAUNCH of command tasks or a LAUNCH_GROUP on the default
executor), and the resources they take from the offer."""

from __future__ import annotations

from dataclasses import dataclass

from protos.resources import Reservation, Resources
from protos.v1 import mesos_pb2

__all__ = ["EXECUTOR_RESOURCES", "LaunchIntent", "LaunchPlan", "plan_launch"]

_Op = mesos_pb2.Offer.Operation

EXECUTOR_RESOURCES = Resources.scalars(cpus=0.1, mem=32)
"""What a task group's default executor takes besides its tasks."""


@dataclass(frozen=True)
class LaunchIntent:
    """LaunchIntent: tasks to launch together on one offer.

    ``run_for`` is how long each task runs (None: until killed); ``exit_code`` how it ends;
    ``group`` launches them as one task group on the default executor; ``reserve`` reserves
    their resources dynamically first (RESERVE then LAUNCH in one ACCEPT).
    """

    count: int
    cpus: float
    mem: float
    run_for: float | None
    exit_code: int
    group: bool
    reserve: bool


@dataclass(frozen=True)
class LaunchPlan:
    """LaunchPlan: the operations, what they take from the offer, the task ids they launch."""

    operations: list[mesos_pb2.Offer.Operation]
    uses: Resources
    task_ids: list[str]


def plan_launch(
    want: LaunchIntent,
    offer: mesos_pb2.Offer,
    offered: Resources,
    *,
    framework: str,
    role: str,
    first_task: int,
) -> LaunchPlan | None:
    """The plan for ``want`` on what is left of ``offer`` (``offered``), or None if it does not
    fit. Resources already reserved to ``role`` are used first; tasks are numbered from
    ``first_task`` (``<framework>-t<n>``)."""
    per_task = Resources.scalars(cpus=want.cpus, mem=want.mem)
    executor = EXECUTOR_RESOURCES if want.group else Resources.EMPTY
    need = executor
    for _ in range(want.count):
        need = need + per_task
    reservation = Reservation(role, "dynamic")

    def reserved(resources: Resources) -> Resources:
        return resources.push_reservation(reservation) if resources else resources

    operations: list[mesos_pb2.Offer.Operation] = []
    if offered.contains(reserved(need)):
        uses, each, executor_each = reserved(need), reserved(per_task), reserved(executor)
    elif offered.contains(need):
        uses, each, executor_each = need, per_task, executor
        if want.reserve:
            op = _Op(type=_Op.RESERVE)
            op.reserve.resources.extend(reserved(need).to_protos(allocation_role=role))
            operations.append(op)
            each, executor_each = reserved(per_task), reserved(executor)
    else:
        return None
    run_for = "forever" if want.run_for is None else f"{want.run_for:.3f}"
    infos = []
    for n in range(first_task, first_task + want.count):
        info = mesos_pb2.TaskInfo(name=f"{framework}-t{n}")
        info.task_id.value = info.name
        info.agent_id.CopyFrom(offer.agent_id)
        info.resources.extend(each.to_protos(allocation_role=role))
        info.command.value = f"sim run_for={run_for} exit={want.exit_code}"
        info.command.shell = True
        infos.append(info)
    if want.group:
        op = _Op(type=_Op.LAUNCH_GROUP)
        op.launch_group.executor.type = mesos_pb2.ExecutorInfo.DEFAULT
        op.launch_group.executor.executor_id.value = f"{framework}-e{first_task}"
        op.launch_group.executor.resources.extend(executor_each.to_protos(allocation_role=role))
        op.launch_group.task_group.tasks.extend(infos)
    else:
        op = _Op(type=_Op.LAUNCH)
        op.launch.task_infos.extend(infos)
    operations.append(op)
    return LaunchPlan(operations, uses, [info.task_id.value for info in infos])
