"""The framework behind ``emporion run``: launch N copies of a command, stream them, report.

:class:`Runner` registers a framework with :class:`framework_sdk.SchedulerClient`, launches
each instance on the first offer that holds its resources (declining the rest; suppressing
offers once every instance is launched), streams each instance's stdout and stderr through the
master's sandbox proxy (:mod:`emporion.client.sandbox`) while it runs, and returns once every
instance has ended and its output has been read to the end, tearing the framework down.

The exit status (:func:`exit_status`) is the command's own: a command task's terminal status
says ``Command exited with status N`` or ``Command terminated by signal N (NAME)`` (the agent's
wording, as Mesos's), giving N, or 128 + N as a shell does; a task that ended any other way
(lost, refused, killed by the cluster, gone with its agent) gives 1. Of several instances the
first, in instance order, that did not succeed decides.

The framework's ``failover_timeout`` is a minute: a run whose client died without tearing down
(kill -9, a lost laptop) has its tasks killed by the master a minute later, while a brief
disconnection (a master failover) loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from emporion.client import ClientError, NotFoundError, SandboxFile, follow
from emporion.client.discovery import MasterEndpoints
from emporion.client.sandbox import POLL_FAST
from framework_sdk import SchedulerClient, events, messages
from framework_sdk.errors import NotSubscribedError, SchedulerSDKError
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = ["FAILOVER_TIMEOUT", "Instance", "RunSpec", "Runner", "exit_status"]

FAILOVER_TIMEOUT = 60.0
"""Seconds the master keeps a disconnected run's tasks before it tears the framework down."""
REFUSE_SECONDS = 5.0
"""How long an offer that fits nothing is refused (more instances may need it later)."""
WAIT_NOTICE = 10.0
"""Seconds without a fitting offer before the allocator's explanation is printed."""
OFFER_WAIT = 20.0
"""Seconds the notice waits on for a first offer, if none came yet, to name the largest one."""
SUBSCRIBE_TIMEOUT = 30.0
"""Seconds to wait for the first SUBSCRIBED."""
MAX_READS_PER_SECOND = 40.0
"""How many sandbox reads a second a run with many instances may ask of the master at most."""

_EXITED = re.compile(r"exited with status (\d+)")
_SIGNALLED = re.compile(r"terminated by signal (\d+)")


def exit_status(status: mesos_pb2.TaskStatus | None) -> int:
    """The exit status a shell would give for a command task that ended with ``status``."""
    if status is None:
        return 1
    if status.state == mesos_pb2.TASK_FINISHED:
        return 0
    if status.state in (mesos_pb2.TASK_FAILED, mesos_pb2.TASK_KILLED):
        if found := _EXITED.search(status.message):
            return int(found.group(1)) or 1
        if found := _SIGNALLED.search(status.message):
            return 128 + int(found.group(1))
    return 1


@dataclass(frozen=True)
class RunSpec:
    """RunSpec: what ``emporion run`` was asked to run."""

    argv: tuple[str, ...]
    resources: Resources
    name: str
    task_prefix: str
    instances: int = 1
    role: str = "*"
    env: tuple[tuple[str, str], ...] = ()
    uris: tuple[str, ...] = ()

    def command(self) -> mesos_pb2.CommandInfo:
        """The CommandInfo: ``argv`` run as it is, without a shell."""
        command = mesos_pb2.CommandInfo(value=self.argv[0], shell=False, arguments=self.argv)
        for name, value in self.env:
            command.environment.variables.add(name=name, value=value)
        for uri in self.uris:
            command.uris.add(value=uri)
        return command

    def task_ids(self) -> list[str]:
        """One task id per instance (the prefix alone for a single instance)."""
        if self.instances == 1:
            return [self.task_prefix]
        return [f"{self.task_prefix}-{index}" for index in range(self.instances)]


@dataclass
class Instance:
    """Instance: one launched (or to be launched) task of the run."""

    task_id: str
    launched: bool = False
    agent_id: str = ""
    hostname: str = ""
    status: mesos_pb2.TaskStatus | None = None
    streams: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """Whether its terminal status arrived."""
        return self.status is not None and messages.is_terminal(self.status.state)


class Output:
    """Output writes task output to the terminal, each line prefixed with its task's id when
    several instances run (``prefix``), or as JSON lines (``as_json``)."""

    def __init__(self, *, prefix: bool, as_json: bool) -> None:
        self.prefix = prefix
        self.as_json = as_json
        self._partial: dict[tuple[str, str], str] = {}

    def write(self, task_id: str, stream: str, data: str) -> None:
        """Write a chunk of ``stream`` (stdout/stderr) of ``task_id``."""
        if self.as_json:
            _json_line({"task_id": task_id, "stream": stream, "data": data})
            return
        target = sys.stdout if stream == "stdout" else sys.stderr
        if not self.prefix:
            target.write(data)
            target.flush()
            return
        key = (task_id, stream)
        lines = (self._partial.pop(key, "") + data).split("\n")
        self._partial[key] = lines.pop()
        for line in lines:
            target.write(f"[{task_id}] {line}\n")
        target.flush()

    def close(self, task_id: str, stream: str) -> None:
        """The stream ended: write what is left of its last line."""
        rest = self._partial.pop((task_id, stream), "")
        if rest:
            target = sys.stdout if stream == "stdout" else sys.stderr
            target.write(f"[{task_id}] {rest}\n")
            target.flush()


def _json_line(value: object, stream: TextIO | None = None) -> None:
    import json

    out = stream or sys.stdout
    out.write(json.dumps(value) + "\n")
    out.flush()


def _note(text: str) -> None:
    print(f"emporion run: {text}", file=sys.stderr, flush=True)


class Runner:
    """Runner runs one :class:`RunSpec` against the master at ``endpoints``.

    ``notify`` receives the progress lines a person at a terminal wants to see (task launched
    where); it is None in scripts. :meth:`run` returns the exit status; :meth:`interrupt` (from
    a signal handler) makes it kill the tasks, tear the framework down and return 130.
    """

    def __init__(
        self,
        spec: RunSpec,
        endpoints: MasterEndpoints,
        output: Output,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.output = output
        self.notify = notify
        self.instances = [Instance(task_id) for task_id in spec.task_ids()]
        self.interrupted = asyncio.Event()
        self.output_closed = False
        """Whether writing the output failed because its reader went away."""
        self._done = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._client: SchedulerClient | None = None
        self._largest_offer: Resources | None = None
        self._declined = asyncio.Event()
        self._failure: str | None = None
        self._torn_down = False
        # Two files per task, each read through the master: at most about 40 reads a second.
        self._poll = max(POLL_FAST, 2 * len(self.instances) / MAX_READS_PER_SECOND)

    def interrupt(self) -> None:
        """Stop: the tasks are killed, the framework torn down (a signal handler calls it)."""
        self.interrupted.set()

    async def run(self) -> int:
        """Run every instance to its end; the exit status (130 when interrupted)."""
        info = messages.framework_info(
            self.spec.name,
            roles=[self.spec.role],
            failover_timeout=FAILOVER_TIMEOUT,
            capabilities=["GPU_RESOURCES"] if self.spec.resources.get("gpus") else (),
        )
        async with httpx.AsyncClient(
            base_url=self.endpoints.http_url,
            follow_redirects=True,  # a follower sends the reads to the leader
            timeout=15.0,
            **self.endpoints.http_options(),
        ) as http:
            self._http = http
            client = SchedulerClient(self.endpoints.grpc, info)
            self._client = client
            await client.start()
            try:
                await asyncio.wait_for(client.wait_subscribed(), SUBSCRIBE_TIMEOUT)
            except TimeoutError:
                await client.close()
                raise ClientError(
                    f"the master at {self.endpoints.given} did not subscribe the framework "
                    f"within {SUBSCRIBE_TIMEOUT:g} s"
                ) from None
            except SchedulerSDKError as error:
                await client.close()
                raise ClientError(f"the master refused the framework: {error}") from None
            try:
                return await self._until_done(client)
            finally:
                for instance in self.instances:
                    for stream in instance.streams:
                        stream.cancel()
                await self._teardown(client)

    async def _until_done(self, client: SchedulerClient) -> int:
        consumer = asyncio.create_task(self._consume(client), name="emporion run events")
        waiter = asyncio.create_task(self._wait_notice(client), name="emporion run notice")
        stop = asyncio.create_task(self.interrupted.wait())
        done = asyncio.create_task(self._done.wait())
        try:
            await asyncio.wait({stop, done, consumer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (consumer, waiter, stop, done):
                task.cancel()
        if self.interrupted.is_set():
            await self._teardown(client)
            if self.output_closed:
                raise BrokenPipeError("the output was closed")
            return 130
        if consumer.done() and not consumer.cancelled():
            crash = consumer.exception()
            if crash is not None:
                raise crash  # a bug: say where
        if self._failure is None and not self._done.is_set():
            self._failure = "the connection to the master ended before the tasks did"
        if self._failure is not None:
            _note(self._failure)
            return 1
        await asyncio.gather(*(s for i in self.instances for s in i.streams))
        await self._teardown(client)
        return self._report()

    async def _teardown(self, client: SchedulerClient) -> None:
        """TEARDOWN once (every task of the run is killed); the client is closed either way."""
        if self._torn_down:
            return
        self._torn_down = True
        try:
            await asyncio.wait_for(client.teardown(), 10.0)
        except (SchedulerSDKError, TimeoutError):
            await client.close()

    def _report(self) -> int:
        """Print each instance that did not succeed; the run's exit status."""
        result = 0
        for instance in self.instances:
            status = instance.status
            code = exit_status(status)
            if self.output.as_json:
                _json_line(_status_json(instance, code))
            elif code != 0 and status is not None:
                reason = mesos_pb2.TaskStatus.Reason.Name(status.reason) if status.reason else ""
                _note(
                    f"task {instance.task_id}: {mesos_pb2.TaskState.Name(status.state)}"
                    + (f" ({reason})" if reason else "")
                    + (f": {status.message}" if status.message else "")
                )
            if code and not result:
                result = code
        return result

    # -- events --------------------------------------------------------------------------------

    async def _consume(self, client: SchedulerClient) -> None:
        async for event in client.events():
            if isinstance(event, events.Error):
                self._failure = f"the master ended the framework: {event.message}"
                return
            # An acknowledgement, decline or reconciliation that does not get through while the
            # client reconnects is let go: the agent resends the update, offers come again.
            with contextlib.suppress(SchedulerSDKError):
                await self._handle(client, event)
            if all(instance.ended for instance in self.instances):
                self._done.set()

    async def _handle(self, client: SchedulerClient, event: events.Event) -> None:
        match event:
            case events.Offers(offers=offers):
                await self._offers(client, offers)
            case events.Update(status=status):
                self._update(status)
                if status.uuid:
                    await client.acknowledge(status)
            case events.Subscribed(resubscribed=True):
                await client.reconcile([])

    async def _offers(self, client: SchedulerClient, offers: tuple[mesos_pb2.Offer, ...]) -> None:
        need = self.spec.resources
        waiting = [instance for instance in self.instances if not instance.launched]
        for offer in offers:
            left = messages.offer_resources(offer)
            batch: list[mesos_pb2.TaskInfo] = []
            while waiting and left.contains(need):
                instance = waiting.pop(0)
                command = self.spec.command()
                batch.append(
                    messages.task_info(
                        instance.task_id, offer, need, command=command, name=self.spec.name
                    )
                )
                instance.launched = True
                instance.agent_id = offer.agent_id.value
                instance.hostname = offer.hostname
                left = left - need
            if not batch:
                offered = messages.offer_resources(offer)
                if self._largest_offer is None or offered.contains(self._largest_offer):
                    self._largest_offer = offered
                self._declined.set()
                await client.decline([offer.id], messages.filters(REFUSE_SECONDS))
                continue
            try:
                await client.launch([offer.id], batch)
            except NotSubscribedError:  # not sent: launch them on the next subscription's offers
                for task in batch:
                    self._instance(task.task_id.value).launched = False
                return
            except SchedulerSDKError as error:
                self._failure = f"the master refused the launch: {error}"
                self._done.set()
                return
            for task in batch:
                self._started(task.task_id.value)
        if not waiting:
            await client.suppress()

    def _instance(self, task_id: str) -> Instance:
        return next(i for i in self.instances if i.task_id == task_id)

    def _started(self, task_id: str) -> None:
        instance = self._instance(task_id)
        if self.notify is not None:
            self.notify(f"task {task_id} launched on {instance.hostname or instance.agent_id}")
        client = self._client
        assert self._http is not None
        assert client is not None
        framework = client.framework_id.value if client.framework_id else ""
        for stream in ("stdout", "stderr"):
            file = SandboxFile(self._http, self.endpoints.given, framework, task_id, path=stream)
            instance.streams.append(
                asyncio.create_task(self._stream(instance, file), name=f"{task_id} {stream}")
            )

    async def _stream(self, instance: Instance, file: SandboxFile) -> None:
        """Copy one file of the sandbox to the terminal until the task ended and it is read.

        When the terminal's side is gone (``| head`` exited), the run stops as after Ctrl-C and
        then ends with the BrokenPipeError, which the command line ends quietly.
        """
        try:
            await self._copy(instance, file)
        except BrokenPipeError:
            self.output_closed = True
            self.interrupt()

    async def _copy(self, instance: Instance, file: SandboxFile) -> None:
        failures = 0
        while True:
            try:
                async for chunk in follow(
                    file, lambda: instance.ended, fast=self._poll, slow=4 * self._poll
                ):
                    failures = 0
                    self.output.write(instance.task_id, file.path, chunk)
                break
            except NotFoundError:
                if instance.ended:
                    break
            except ClientError as error:  # the agent or master did not answer: try again
                failures += 1
                if instance.ended and failures >= 3:
                    _note(f"the {file.path} of task {instance.task_id} could not be read: {error}")
                    break
            await asyncio.sleep(1.0)
        self.output.close(instance.task_id, file.path)

    def _update(self, status: mesos_pb2.TaskStatus) -> None:
        instance = next((i for i in self.instances if i.task_id == status.task_id.value), None)
        if instance is None or instance.ended:
            return
        instance.status = status

    async def _wait_notice(self, client: SchedulerClient) -> None:
        """After WAIT_NOTICE seconds with instances unlaunched, say why (once): what it waits
        for, the largest offer declined, the allocator's explanation."""
        await asyncio.sleep(WAIT_NOTICE)
        if all(instance.launched for instance in self.instances):
            return
        # Say it with the largest offer seen, when one comes soon.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._declined.wait(), OFFER_WAIT)
        if all(instance.launched for instance in self.instances):
            return
        need = str(self.spec.resources)
        largest = self._largest_offer
        lines = [f"waiting for an offer of {need} for role {self.spec.role}"]
        if largest is not None:
            lines.append(f"the largest offer so far held {largest}")
        framework = client.framework_id.value if client.framework_id else ""
        explanations = await self._explanations(framework)
        lines.extend(explanations)
        _note("; ".join(lines))

    async def _explanations(self, framework: str) -> list[str]:
        assert self._http is not None
        body = {"type": "GET_EXPLANATION", "get_explanation": {"framework_id": framework}}
        try:
            response = await self._http.post("/api/v1", json=body)
            found = response.json()["get_explanation"]["explanations"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []
        return [str(item.get("message", "")) for item in found]


def _status_json(instance: Instance, code: int) -> dict[str, object]:
    status = instance.status
    return {
        "task_id": instance.task_id,
        "agent_id": instance.agent_id,
        "state": mesos_pb2.TaskState.Name(status.state) if status else None,
        "reason": mesos_pb2.TaskStatus.Reason.Name(status.reason)
        if status and status.reason
        else None,
        "message": status.message if status else None,
        "exit_status": code,
    }
