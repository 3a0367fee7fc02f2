"""A minimal custom executor on the raw gRPC executor API, for the agent's integration tests.

Run by the agent as ``python raw_executor.py``. It subscribes, answers every LAUNCH with
TASK_RUNNING, then acts on the task's ``data``: ``finish`` sends TASK_FINISHED, ``fail`` exits
the process with status 7, anything else keeps the task running until KILL (TASK_KILLED).
Framework messages are echoed back prefixed with ``echo:``; SHUTDOWN kills all and exits.

When the agent goes away and ``MESOS_CHECKPOINT`` is ``1``, it subscribes again until it
succeeds (as executors of checkpointing frameworks must), unless ``RAW_EXECUTOR_STAY_AWAY`` is
set: then it stays alive without ever coming back.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable

import grpc

from protos.v1 import executor_pb2, executor_pb2_grpc, mesos_pb2

Event = executor_pb2.Event
Call = executor_pb2.Call


def main() -> int:
    # Reconnect quickly to a restarted agent: it waits only seconds for executors to return.
    options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]
    channel = grpc.insecure_channel(os.environ["EMPORION_AGENT_ENDPOINT"], options)
    stub = executor_pb2_grpc.ExecutorStub(channel)
    base = Call()
    base.framework_id.value = os.environ["MESOS_FRAMEWORK_ID"]
    base.executor_id.value = os.environ["MESOS_EXECUTOR_ID"]
    running: set[str] = set()

    def update(task_id: str, state: mesos_pb2.TaskState.ValueType) -> None:
        call = Call()
        call.CopyFrom(base)
        call.type = Call.UPDATE
        status = call.update.status
        status.task_id.value = task_id
        status.state = state
        status.uuid = uuid.uuid4().bytes
        status.timestamp = time.time()
        stub.Update(call)
        if state == mesos_pb2.TASK_RUNNING:
            running.add(task_id)
        else:
            running.discard(task_id)

    subscribe = Call()
    subscribe.CopyFrom(base)
    subscribe.type = Call.SUBSCRIBE
    while True:
        try:
            return serve(stub, subscribe, update, running, base)
        except grpc.RpcError:
            if os.environ.get("MESOS_CHECKPOINT") != "1":
                return 1
            if os.environ.get("RAW_EXECUTOR_STAY_AWAY"):
                time.sleep(3600)
            time.sleep(0.1)


def serve(
    stub: executor_pb2_grpc.ExecutorStub,
    subscribe: executor_pb2.Call,
    update: Callable[[str, mesos_pb2.TaskState.ValueType], None],
    running: set[str],
    base: executor_pb2.Call,
) -> int:
    for event in stub.Subscribe(subscribe):
        if event.type == Event.LAUNCH:
            task = event.launch.task
            update(task.task_id.value, mesos_pb2.TASK_RUNNING)
            if task.data == b"finish":
                update(task.task_id.value, mesos_pb2.TASK_FINISHED)
            elif task.data == b"fail":
                return 7
        elif event.type == Event.KILL:
            update(event.kill.task_id.value, mesos_pb2.TASK_KILLED)
        elif event.type == Event.MESSAGE:
            call = Call()
            call.CopyFrom(base)
            call.type = Call.MESSAGE
            call.message.data = b"echo:" + event.message.data
            stub.Message(call)
        elif event.type == Event.SHUTDOWN:
            for task_id in list(running):
                update(task_id, mesos_pb2.TASK_KILLED)
            return 0
    raise grpc.RpcError("the agent ended the subscription")


if __name__ == "__main__":
    sys.exit(main())
