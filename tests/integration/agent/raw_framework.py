"""A framework over the raw ``Scheduler`` gRPC stub, and a real master process, for e2e tests."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2
from protos.v1 import scheduler_pb2_grpc as sched_grpc
from tests.integration.agent.support import ROOT

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
WAIT = 60.0


class MasterProcess:
    """``python -m master --port 0`` with its registry under ``work_dir``."""

    def __init__(self, work_dir: Path) -> None:
        self.log_path = work_dir.parent / f"{work_dir.name}-master.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "master",
                    "--port",
                    "0",
                    "--http-port",
                    "0",
                    "--work-dir",
                    str(work_dir),
                    "--allocation-interval",
                    "50ms",
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"master did not start: {line!r}\n{self.log_path.read_text()}")
        self.address = match.group(1)

    def stop(self) -> None:
        """Stop the master (SIGTERM, then SIGKILL)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class RawFramework:
    """Subscribes to a master, records every event and acknowledges every reliable update."""

    def __init__(self, address: str, checkpoint: bool = False) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = sched_grpc.SchedulerStub(self.channel)
        self.info = mesos_pb2.FrameworkInfo(user="", name="agent-e2e", checkpoint=checkpoint)
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._stream: grpc.CallIterator[Event] | None = None
        self.metadata: tuple[tuple[str, str], ...] = ()

    def subscribe(self) -> None:
        """Subscribe and wait for SUBSCRIBED."""
        call = Call(type=Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(self.info)
        stream = self.stub.Subscribe(call)
        self._stream = stream
        metadata = dict(stream.initial_metadata())
        self.metadata = (("mesos-stream-id", str(metadata.get("mesos-stream-id", ""))),)
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        self.wait_for(lambda: self.of(Event.SUBSCRIBED), "SUBSCRIBED")
        self.info.id.CopyFrom(self.of(Event.SUBSCRIBED)[0].subscribed.framework_id)

    def _read(self, stream: Iterator[Event]) -> None:
        try:
            for event in stream:
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()
                if event.type == Event.UPDATE and event.update.status.uuid:
                    self.acknowledge(event.update.status)
        except grpc.RpcError:
            pass

    def close(self) -> None:
        """Drop the subscription."""
        if self._stream is not None:
            self._stream.cancel()  # type: ignore[no-untyped-call]
        self.channel.close()

    def of(self, kind: int) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.type == kind]

    def wait_for(self, predicate: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + WAIT
        with self._cond:
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}")
                self._cond.wait(0.2)

    def updates(self, task_id: str) -> list[mesos_pb2.TaskStatus]:
        return [
            e.update.status
            for e in self.of(Event.UPDATE)
            if e.update.status.task_id.value == task_id
        ]

    def wait_state(
        self, task_id: str, state: mesos_pb2.TaskState.ValueType
    ) -> mesos_pb2.TaskStatus:
        """Wait for an update of ``task_id`` in ``state``."""
        self.wait_for(
            lambda: any(s.state == state for s in self.updates(task_id)),
            f"{mesos_pb2.TaskState.Name(state)} of {task_id}",
        )
        return next(s for s in self.updates(task_id) if s.state == state)

    def call(self, method: str, call: scheduler_pb2.Call) -> None:
        call.framework_id.CopyFrom(self.info.id)
        getattr(self.stub, method)(call, metadata=self.metadata)

    def launch(
        self, task_id: str, command: str, resources: str = "cpus:0.1;mem:64"
    ) -> mesos_pb2.Offer:
        """Wait for an offer and launch one command task on it; return the offer."""
        self.wait_for(lambda: self.of(Event.OFFERS), "an offer")
        offer = self.of(Event.OFFERS)[-1].offers.offers[0]
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
        task = operation.launch.task_infos.add(name=task_id)
        task.task_id.value = task_id
        task.agent_id.CopyFrom(offer.agent_id)
        task.resources.extend(Resources.parse(resources).to_protos(allocation_role=role))
        task.command.value = command
        accept = Call(type=Call.ACCEPT)
        accept.accept.offer_ids.append(offer.id)
        accept.accept.operations.append(operation)
        self.call("Accept", accept)
        return offer

    def launch_group(
        self, executor_id: str, commands: dict[str, str], resources: str = "cpus:0.1;mem:32"
    ) -> mesos_pb2.Offer:
        """Wait for an offer and launch a group of command tasks under the default executor."""
        self.wait_for(lambda: self.of(Event.OFFERS), "an offer")
        offer = self.of(Event.OFFERS)[-1].offers.offers[0]
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH_GROUP)
        executor = operation.launch_group.executor
        executor.type = mesos_pb2.ExecutorInfo.DEFAULT
        executor.executor_id.value = executor_id
        executor.resources.extend(Resources.parse(resources).to_protos(allocation_role=role))
        for task_id, command in commands.items():
            task = operation.launch_group.task_group.tasks.add(name=task_id)
            task.task_id.value = task_id
            task.agent_id.CopyFrom(offer.agent_id)
            task.resources.extend(Resources.parse(resources).to_protos(allocation_role=role))
            task.command.value = command
        accept = Call(type=Call.ACCEPT)
        accept.accept.offer_ids.append(offer.id)
        accept.accept.operations.append(operation)
        self.call("Accept", accept)
        return offer

    def acknowledge(self, status: mesos_pb2.TaskStatus) -> None:
        call = Call(type=Call.ACKNOWLEDGE)
        call.acknowledge.agent_id.CopyFrom(status.agent_id)
        call.acknowledge.task_id.CopyFrom(status.task_id)
        call.acknowledge.uuid = status.uuid
        self.call("Acknowledge", call)

    def kill(self, task_id: str) -> None:
        call = Call(type=Call.KILL)
        call.kill.task_id.value = task_id
        self.call("Kill", call)
