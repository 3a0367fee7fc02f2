"""A scheduler written the way Mesos Python frameworks are, ported by changing its imports.

``PortedScheduler`` uses the classic idioms: ``mesos_pb2`` message construction with
``resources.add()`` and ``Value.SCALAR``, a LAUNCH operation through ``acceptOffers``,
``TaskState.Name``, explicit acknowledgements, ``updateFramework`` from ``registered``, framework
messages carrying binary data. The only differences from a Mesos framework are the imports and
the v1 names (``agent_id`` for ``slave_id``). It runs against the scripted cluster.
"""

from __future__ import annotations

from typing import Any

from framework_sdk import Scheduler as MesosScheduler
from framework_sdk import SchedulerDriver as MesosSchedulerDriver
from framework_sdk import messages as mesos_pb2
from tests.unit.sdk.conftest import FAST
from tests.unit.sdk.scripted_master import ScriptedCluster, ScriptedMaster

TOTAL_TASKS = 4
TASK_CPUS = 0.25
TASK_MEM = 128
PAYLOAD = b"binary \x00 payload"


class PortedScheduler(MesosScheduler):
    def __init__(self, framework: Any) -> None:
        self.framework = framework
        self.launched = 0
        self.finished: set[str] = set()
        self.executors: dict[str, tuple[Any, Any]] = {}
        self.replies: list[bytes] = []
        self.log: list[str] = []

    def registered(self, driver: Any, frameworkId: Any, masterInfo: Any) -> None:
        self.log.append("registered %s" % frameworkId.value)  # noqa: UP031 - period style
        self.framework.id.CopyFrom(frameworkId)
        driver.updateFramework(self.framework, [])

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        for offer in offers:
            cpus_left = sum(r.scalar.value for r in offer.resources if r.name == "cpus")
            mem_left = sum(r.scalar.value for r in offer.resources if r.name == "mem")
            tasks = []
            while self.launched < TOTAL_TASKS and cpus_left >= TASK_CPUS and mem_left >= TASK_MEM:
                tid = self.launched
                self.launched += 1
                task = mesos_pb2.TaskInfo()
                task.task_id.value = str(tid)
                task.agent_id.value = offer.agent_id.value
                task.name = "task %d" % tid  # noqa: UP031
                task.command.value = "echo %d" % tid  # noqa: UP031
                cpus = task.resources.add()
                cpus.name = "cpus"
                cpus.type = mesos_pb2.Value.SCALAR
                cpus.scalar.value = TASK_CPUS
                mem = task.resources.add()
                mem.name = "mem"
                mem.type = mesos_pb2.Value.SCALAR
                mem.scalar.value = TASK_MEM
                tasks.append(task)
                executor_id = mesos_pb2.ExecutorID(value="executor-%d" % tid)  # noqa: UP031
                self.executors[task.task_id.value] = (offer.agent_id, executor_id)
                cpus_left -= TASK_CPUS
                mem_left -= TASK_MEM
            operation = mesos_pb2.Offer.Operation()
            operation.type = mesos_pb2.Offer.Operation.LAUNCH
            operation.launch.task_infos.extend(tasks)
            driver.acceptOffers([offer.id], [operation])

    def statusUpdate(self, driver: Any, update: Any) -> None:
        self.log.append(
            "task %s is %s" % (update.task_id.value, mesos_pb2.TaskState.Name(update.state))  # noqa: UP031
        )
        if update.state == mesos_pb2.TASK_FINISHED and update.task_id.value not in self.finished:
            self.finished.add(update.task_id.value)
            agent_id, executor_id = self.executors[update.task_id.value]
            driver.sendFrameworkMessage(executor_id, agent_id, PAYLOAD)
        if update.state in (mesos_pb2.TASK_LOST, mesos_pb2.TASK_KILLED, mesos_pb2.TASK_FAILED):
            driver.abort()
        driver.acknowledgeStatusUpdate(update)

    def frameworkMessage(self, driver: Any, executorId: Any, agentId: Any, message: Any) -> None:
        self.replies.append(message)
        if len(self.replies) == TOTAL_TASKS:
            driver.stop()


def test_a_mesos_style_framework_runs_unchanged(master: ScriptedMaster) -> None:
    ScriptedCluster(master)
    framework = mesos_pb2.FrameworkInfo()
    framework.user = ""  # Have the driver fill in the current user, as Mesos's does.
    framework.name = "Ported Framework (Python)"
    scheduler = PortedScheduler(framework)
    driver = MesosSchedulerDriver(scheduler, framework, master.address, False, config=FAST)

    status = 0 if driver.run() == mesos_pb2.DRIVER_STOPPED else 1

    assert status == 0
    assert scheduler.finished == {"0", "1", "2", "3"}
    assert scheduler.replies == [PAYLOAD] * TOTAL_TASKS
    assert scheduler.log[0] == "registered framework-1"
    assert "task 0 is TASK_RUNNING" in scheduler.log
    update = master.wait_calls("UpdateFramework")[0].call.update_framework
    assert update.framework_info.name == "Ported Framework (Python)"
    assert update.framework_info.id.value == "framework-1"
    launched = master.wait_calls("Accept")[0].call.accept.operations[0].launch.task_infos
    assert [t.name for t in launched] == ["task 0", "task 1", "task 2", "task 3"]
    # Explicit acknowledgements, all sent before the teardown.
    assert master.methods()[-1] == "Teardown"
    assert len(master.wait_calls("Acknowledge", 2 * TOTAL_TASKS)) >= 2 * TOTAL_TASKS
