"""A real framework for the browser tests: the SDK's asyncio client on a thread of its own.

The tests drive it from synchronous code (Playwright's sync API owns the main thread):
:meth:`UiFramework.run_task` queues a command task and returns once it is RUNNING;
:meth:`UiFramework.suppress` stops offers; :meth:`UiFramework.stop` tears the framework down.
It declines offers it has no use for with a short refusal, so queued tasks launch quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any

from framework_sdk import SchedulerClient, events, messages
from protos.resources import Resources

__all__ = ["UiFramework"]

TASK_RESOURCES = "cpus:0.1;mem:32"
WAIT = 60.0
"""How long a call waits for the framework (a bound, not an expectation)."""


class UiFramework:
    """UiFramework subscribes as ``name`` to ``master`` and runs the tasks it is given."""

    def __init__(
        self, master: str, name: str, *, webui_url: str = "", roles: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.framework_id = ""
        self.states: dict[str, str] = {}
        self._queue: list[tuple[str, str]] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._loop = asyncio.new_event_loop()
        self._client: SchedulerClient | None = None
        self._info = messages.framework_info(name, roles=roles, webui_url=webui_url or None)
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fw-{name}")
        self._thread.start()
        self._runner: asyncio.Task[None] | None = None

        async def start() -> None:
            self._runner = asyncio.get_running_loop().create_task(self._run(master))

        self._submit(start()).result(WAIT)
        self._until(lambda: bool(self.framework_id), "the framework to subscribe")

    def _submit(self, coroutine: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _until(self, predicate: Callable[[], bool], what: str) -> None:
        async def wait() -> None:
            if predicate():
                return
            future = self._loop.create_future()
            self._waiters.append((predicate, future))
            await future

        try:
            self._submit(asyncio.wait_for(wait(), WAIT)).result(WAIT + 5)
        except TimeoutError as error:
            raise AssertionError(f"timed out waiting for {what}; states {self.states}") from error

    def _wake(self) -> None:
        for predicate, future in list(self._waiters):
            if predicate() and not future.done():
                future.set_result(None)
                self._waiters.remove((predicate, future))

    async def _run(self, master: str) -> None:
        async with SchedulerClient(master, self._info) as client:
            self._client = client
            async for event in client.events():
                match event:
                    case events.Subscribed(framework_id=framework_id):
                        self.framework_id = framework_id.value
                    case events.Offers(offers=offers):
                        await self._use(client, offers)
                    case events.Update(status=status):
                        self.states[status.task_id.value] = messages.state_name(status.state)
                        if status.uuid:
                            await client.acknowledge(status)
                    case _:
                        pass
                self._wake()

    async def _use(self, client: SchedulerClient, offers: Sequence[Any]) -> None:
        need = Resources.parse(TASK_RESOURCES)
        for offer in offers:
            available = messages.offer_resources(offer)
            tasks = []
            while self._queue and available.contains(need):
                task_id, command = self._queue.pop(0)
                tasks.append(messages.task_info(task_id, offer, need, command=command))
                available -= need
            if tasks:
                await client.launch([offer.id], tasks)
            else:
                await client.decline([offer.id], messages.filters(refuse_seconds=0.2))

    def run_task(self, task_id: str, command: str) -> None:
        """Launch ``command`` as task ``task_id``; return once it is RUNNING."""

        async def queue() -> None:
            self._queue.append((task_id, command))
            assert self._client is not None
            await self._client.revive()

        self._submit(queue()).result(WAIT)
        self._until(lambda: self.states.get(task_id) == "TASK_RUNNING", f"{task_id} to run")

    def wait_state(self, task_id: str, state: str) -> None:
        """Wait until ``task_id`` reached ``state``."""
        self._until(lambda: self.states.get(task_id) == state, f"{task_id} to be {state}")

    def suppress(self) -> None:
        """Ask for no more offers (SUPPRESS)."""
        assert self._client is not None
        self._submit(self._client.suppress()).result(WAIT)

    def stop(self) -> None:
        """Tear the framework down and end its thread."""
        if self._client is not None:
            # It may be gone already (torn down by a test).
            with contextlib.suppress(Exception):
                self._submit(self._client.teardown()).result(WAIT)

        async def end() -> None:
            if self._runner is not None:
                self._runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._runner

        self._submit(end()).result(WAIT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()
