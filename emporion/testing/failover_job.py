"""A job across a master failover: frameworks (the SDK's asyncio client on a ``zk://`` URL) each
running tasks on emulated agents (for the HA tests and ``bench.failover``).

:class:`FailoverFramework` subscribes, launches its tasks one per offer, and records every
status update (acknowledging it). Once every task is launched it declines every offer (for an
hour; a new leader, which does not keep the filters, offers everything again), or, with
``suppress``, suppresses offers, as a framework with nothing left to run should (the SDK
subscribes again with the roles suppressed, so a new leader offers it nothing).
After a failover, :meth:`FailoverFramework.wait_back` waits until it is subscribed again under
the new leader, and :meth:`FailoverFramework.wait_tasks_back` reconciles until the new leader
reports every task RUNNING (it answers only for agents that reregistered, so that also says the
agents are back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from framework_sdk import ClientConfig, SchedulerClient, SchedulerSDKError, events, messages
from protos.v1 import mesos_pb2

__all__ = ["QUICK", "TASK_RESOURCES", "FailoverFramework"]

QUICK = ClientConfig(
    backoff_initial_seconds=0.05, backoff_max_seconds=0.5, subscribe_timeout_seconds=5.0
)
"""Reconnect fast: the tests and the benchmark measure the masters, not the backoff."""

TASK_RESOURCES = "cpus:0.1;mem:32"

_TERMINAL = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
        mesos_pb2.TASK_UNREACHABLE,
    }
)


class FailoverFramework:
    """One framework of the job; ``tasks`` tasks named ``<name>-<i>``."""

    def __init__(
        self,
        master: str,
        name: str,
        tasks: int,
        command: str = "sleep 3600",
        *,
        suppress: bool = False,
    ) -> None:
        self.name = name
        self.command = command
        self.suppress = suppress
        self.suppressed = False
        """Whether it suppressed offers (every task launched, with ``suppress``)."""
        self.task_ids = [f"{name}-{i}" for i in range(tasks)]
        info = messages.framework_info(name, failover_timeout=300)
        self.client = SchedulerClient(master, info, config=QUICK)
        self.states: dict[str, int] = {}
        self.terminal: dict[str, int] = {}
        """Tasks that reached a terminal state (none should, in a failover)."""
        self.subscriptions: list[events.Subscribed] = []
        self.subscribed_at: list[float] = []
        """``time.monotonic()`` of each SUBSCRIBED, in order."""
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, then read events in the background."""
        await self.client.start()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        """Tear the framework down (its tasks are killed) and close the client."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.teardown(), 5.0)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.client.close()

    async def _read(self) -> None:
        to_launch = list(self.task_ids)
        async for event in self.client.events():
            # A call lost with the master: the agent resends the update, offers die with it.
            with contextlib.suppress(SchedulerSDKError):
                await self._handle(event, to_launch)
            self._changed.set()

    async def _handle(self, event: events.Event, to_launch: list[str]) -> None:
        match event:
            case events.Subscribed():
                self.subscriptions.append(event)
                self.subscribed_at.append(time.monotonic())
            case events.Offers(offers=offers):
                unused = []
                for offer in offers:
                    if to_launch:
                        task = messages.task_info(
                            to_launch.pop(), offer, TASK_RESOURCES, command=self.command
                        )
                        await self.client.launch([offer.id], [task])
                    else:
                        unused.append(offer.id)
                if unused:
                    # One DECLINE for the lot: after a failover the new leader offers every
                    # agent again (filters are not kept), while the agents are reregistering.
                    await self.client.decline(unused, messages.filters(refuse_seconds=3600))
                if not to_launch and self.suppress and not self.suppressed:
                    self.suppressed = True
                    await self.client.suppress()
            case events.Update(status=status):
                task_id = status.task_id.value
                self.states[task_id] = status.state
                if status.state in _TERMINAL:
                    self.terminal[task_id] = status.state
                if status.uuid:
                    await self.client.acknowledge(status)

    async def _wait(self, predicate: object, timeout: float) -> None:
        assert callable(predicate)
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_running(self, timeout: float) -> None:
        """Until every task was reported RUNNING."""
        await self._wait(
            lambda: all(self.states.get(t) == mesos_pb2.TASK_RUNNING for t in self.task_ids),
            timeout,
        )

    async def wait_terminal(self, task_id: str, state: int, timeout: float) -> None:
        """Until ``task_id`` was reported in the terminal ``state``."""
        await self._wait(lambda: self.terminal.get(task_id) == state, timeout)

    async def wait_back(self, master_id: str, timeout: float) -> None:
        """Until subscribed again, to the master with id ``master_id``."""

        def back() -> bool:
            return bool(self.subscriptions) and (
                (info := self.subscriptions[-1].master_info) is not None and info.id == master_id
            )

        await self._wait(back, timeout)

    async def wait_tasks_back(self, timeout: float, every: float = 0.2) -> None:
        """Reconcile (implicitly) until the master reports every task RUNNING again."""
        async with asyncio.timeout(timeout):
            while True:
                for task_id in self.task_ids:
                    self.states.pop(task_id, None)
                with contextlib.suppress(Exception):  # Refused while between masters.
                    await self.client.reconcile()
                with contextlib.suppress(TimeoutError):
                    await self._wait(
                        lambda: all(
                            self.states.get(t) == mesos_pb2.TASK_RUNNING for t in self.task_ids
                        ),
                        every,
                    )
                    return
