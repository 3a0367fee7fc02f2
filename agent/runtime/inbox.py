"""MasterInbox: the master's messages waiting to be handled, frameworks taking turns.

The master may send an agent thousands of RunTasks of one framework in a row; handled in
arrival order, another framework's RunTask, KillTask or acknowledgement sent just after them
waits until all are handled. So messages that belong to one framework are handled in the order
they came, but frameworks take turns (:class:`~agent.runtime.launch_queue.FairLaunchQueue`):
one framework's message, then the next framework's, and so on. Nothing about one framework's
messages depends on another's (the master decided where resources go; the agent only carries
it out), so only the per-framework order is Mesos's contract.

A message that concerns the whole agent (ShutdownAgent, Error, ...) is a barrier: everything
that came before it is handled before it, everything after it after it.

A ShutdownFramework drops the framework's messages still waiting: its framework is gone at the
master, which counts its tasks killed; RunTasks not handled yet are never started (nothing is
created for them) and the shutdown is handled in the framework's next turn, not after them.

Plain data, no I/O.
"""

from __future__ import annotations

from collections import deque

from agent.runtime.launch_queue import FairLaunchQueue
from protos.v1 import agent_internal_pb2

__all__ = ["MasterInbox", "framework_of"]

MasterMessage = agent_internal_pb2.MasterMessage


def framework_of(message: MasterMessage) -> str | None:
    """The framework ``message`` concerns; None for a message about the whole agent."""
    kind = message.WhichOneof("payload")
    if kind is None:
        return None
    payload = getattr(message, kind)
    if kind == "run_task_group":
        if payload.framework_info.HasField("id"):
            return str(payload.framework_info.id.value)
        return str(payload.executor.framework_id.value)
    if kind == "run_task" and not payload.HasField("framework_id"):
        return str(payload.framework_info.id.value)
    descriptor = payload.DESCRIPTOR.fields_by_name.get("framework_id")
    if descriptor is None:
        return None
    return str(payload.framework_id.value)


class MasterInbox:
    """Messages to handle: FIFO per framework, frameworks in turn, agent-wide ones barriers."""

    def __init__(self) -> None:
        # Each epoch: the framework messages that came before its barrier, and the barrier
        # (an empty list while the epoch is the newest, still open).
        self._epochs: deque[tuple[FairLaunchQueue[MasterMessage], list[MasterMessage]]] = deque()
        self._count = 0
        self._serial = 0
        self.dropped = 0  # Messages of shut-down frameworks dropped unhandled.

    def __len__(self) -> int:
        return self._count

    def put(self, message: MasterMessage) -> None:
        """Queue ``message`` behind those of its framework (and behind every barrier)."""
        if not self._epochs or self._epochs[-1][1]:
            self._epochs.append((FairLaunchQueue(), []))
        framework_id = framework_of(message)
        if framework_id is not None and message.WhichOneof("payload") == "shutdown_framework":
            self.dropped += self._drop(framework_id)
        queue, barrier = self._epochs[-1]
        if framework_id is None:
            barrier.append(message)  # Closes the epoch: later messages open a new one.
        else:
            self._serial += 1
            queue.put(framework_id, str(self._serial), message)
        self._count += 1

    def _drop(self, framework_id: str) -> int:
        dropped = sum(len(queue.remove_framework(framework_id)) for queue, _ in self._epochs)
        self._count -= dropped
        return dropped

    def take(self) -> MasterMessage | None:
        """The next message to handle; None if none waits."""
        while self._epochs:
            queue, barrier = self._epochs[0]
            taken = queue.take()
            if taken is not None:
                self._count -= 1
                return taken[1]
            self._epochs.popleft()
            if barrier:
                self._count -= 1
                return barrier[0]
        return None
