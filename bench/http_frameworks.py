"""Benchmark frameworks on Mesos's v1 scheduler HTTP API (``bench.launch_throughput --api http``).

Each :class:`HttpBenchFramework` does what a pymesos scheduler does on the wire: SUBSCRIBE as a
``POST /api/v1/scheduler`` answered by a chunked stream of RecordIO-framed events, then one POST
per ACCEPT, DECLINE, SUPPRESS and per ACKNOWLEDGE, with the ``Mesos-Stream-Id`` header. With
JSON (the default) it works on the events' JSON documents as pymesos hands them to a scheduler,
and builds its calls as documents, sent as ``json.dumps`` writes them: offers are read from the
document (scalars summed per name), the ACCEPT's tasks are documents (the task's resources
written once per role), and ``acknowledge`` copies the update's ``agent_id``, ``task_id`` and
base64 ``uuid`` as received. With ``content="protobuf"`` the events and calls are protobuf.

The client must be cheap: it shares a small machine with the master it measures, and its CPU is
counted in ``bench_cpu_s``. So it is an asyncio protocol with ``httptools`` parsing the answers
(the C parser uvicorn uses), not an HTTP library: each framework keeps a few keep-alive
connections (one per acknowledgement worker, one for its other calls, one for its stream), each
carrying one request at a time as HTTP/1.1 allows without pipelining; the stream's chunks are
handled as they arrive, in the protocol's callbacks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc.aio
import httptools

from bench.launch_throughput import BenchFramework, Totals
from protos.mesos_http import message_json
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = ["HttpBenchFramework", "HttpCallError", "HttpConnection", "records"]

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
PATH = "/api/v1/scheduler"
_STATES: dict[str, int] = dict(mesos_pb2.TaskState.items())
_Answer = tuple[int, bytes, dict[bytes, bytes]]


class HttpCallError(RuntimeError):
    """HttpCallError: the master answered a call with an error status, or broke the protocol."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to the master: one request at a time.

    :meth:`post` sends a request and returns its answer: status, body and headers (names
    lowercase). With ``stream`` it returns once the headers are in, and every chunk of the body
    then goes to ``stream`` as it arrives, until :attr:`ended` is done (the body's end, or the
    connection's).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[_Answer] | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.stream: Callable[[bytes], None] | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        """A connection to ``host:port``."""
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    @property
    def closed(self) -> bool:
        """Whether the connection is closed or closing (the master ends idle keep-alive
        connections after a few seconds)."""
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        """Close the connection (if open)."""
        if self.transport is not None:
            self.transport.close()

    async def post(
        self, head: bytes, body: bytes, stream: Callable[[bytes], None] | None = None
    ) -> _Answer:
        """Send ``head`` (request line and headers up to ``Content-Length: ``) with ``body``;
        the answer (see the class docstring)."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the connection is closed")
        self.headers = {}
        self.body = []
        self.stream = stream
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        return await self.answer

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as error:  # A bad answer, or a stream handler's failure.
            self._fail(error)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("the master closed the connection"))

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if self.stream is not None and status == 200 and self.answer is not None:
            self.answer.set_result((status, b"", self.headers))
            self.answer = None

    def on_body(self, body: bytes) -> None:
        if self.answer is None and self.stream is not None:
            self.stream(body)
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        answer, self.answer = self.answer, None
        if answer is not None:
            answer.set_result((self.parser.get_status_code(), b"".join(self.body), self.headers))
        elif self.stream is not None and not self.ended.done():
            self.ended.set_result(None)
        if not self.parser.should_keep_alive():
            self.close()

    def _fail(self, error: BaseException) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        if not self.ended.done():
            self.ended.set_exception(error)
            self.ended.exception()  # Retrieved: nobody may be waiting for it.


def records(buffer: bytearray) -> list[bytes]:
    """Remove the whole RecordIO records at the start of ``buffer`` and return them."""
    found: list[bytes] = []
    start = 0
    end = len(buffer)
    while True:
        newline = buffer.find(b"\n", start)
        if newline < 0:
            break
        size = int(buffer[start:newline])
        if newline + 1 + size > end:
            break
        found.append(bytes(buffer[newline + 1 : newline + 1 + size]))
        start = newline + 1 + size
    del buffer[:start]
    return found


class HttpBenchFramework(BenchFramework):
    """A :class:`BenchFramework` on ``/api/v1/scheduler`` (see the module docstring).

    ``ack_workers`` is the number of acknowledgement connections, hence of ACKNOWLEDGE POSTs in
    flight at once; the framework's other calls go in order on a connection of their own.
    """

    def __init__(
        self,
        index: int,
        channel: grpc.aio.Channel,
        http_address: str,
        share: int,
        task_resources: Resources,
        *,
        totals: Totals,
        content: str = "json",
        ack_workers: int = 4,
        max_tasks_per_offer: int = 0,
    ) -> None:
        super().__init__(
            index,
            channel,  # Unused: every call goes over HTTP.
            share,
            task_resources,
            totals,
            batched=False,
            ack_workers=ack_workers,
            max_tasks_per_offer=max_tasks_per_offer,
        )
        host, _, port = http_address.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.json = content == "json"
        media = b"application/json" if self.json else b"application/x-protobuf"
        self.base_head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nAccept: %s\r\n" % (
            PATH.encode(),
            http_address.encode(),
            media,
            media,
        )
        self.head = self.base_head + b"Content-Length: "
        self.framework_value = ""
        self.bodies: asyncio.Queue[bytes] = asyncio.Queue()
        self.others: deque[tuple[str, bytes]] = deque()
        self.others_ready = asyncio.Event()
        self.connections: list[HttpConnection] = []
        self.buffer = bytearray()
        # What a task needs, in thousandths (offers are read in the same unit: exact floors).
        self.needs = {
            name: round(value * 1000) for name, value in task_resources.scalar_totals().items()
        }
        self.task_resources_json: dict[str | None, list[dict[str, Any]]] = {}

    async def _connection(self) -> HttpConnection:
        connection = await HttpConnection.open(self.host, self.port)
        self.connections.append(connection)
        return connection

    async def run(self) -> None:
        """Subscribe and handle events until cancelled; a failure ends the whole run."""
        try:
            await self._run()
        except (HttpCallError, OSError, ValueError, KeyError, httptools.HttpParserError) as error:
            self.totals.failure = f"framework {self.index}: {type(error).__name__}: {error}"
            self.totals.running_done.set()
            self.totals.finished_done.set()

    async def _run(self) -> None:
        info = mesos_pb2.FrameworkInfo(user="bench", name=f"bench-{self.index}")
        subscribe = Call(type=Call.SUBSCRIBE, subscribe=Call.Subscribe(framework_info=info))
        workers: list[asyncio.Task[None]] = []
        try:
            stream = await self._connection()
            body = self._encode(subscribe)
            status, answer, headers = await stream.post(self.head, body, self._on_chunk)
            if status != 200:
                raise HttpCallError(
                    f"SUBSCRIBE answered {status}: {answer.decode(errors='replace')}"
                )
            stream_id = headers[b"mesos-stream-id"]
            self.head = self.base_head + b"Mesos-Stream-Id: %s\r\nContent-Length: " % stream_id
            workers = [asyncio.create_task(self._ack_worker()) for _ in range(self.ack_workers)]
            workers.append(asyncio.create_task(self._other_worker()))
            await stream.ended
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for connection in self.connections:
                connection.close()

    def _on_chunk(self, chunk: bytes) -> None:
        """Part of the event stream: its whole records handled at once."""
        buffer = self.buffer
        buffer += chunk
        for data in records(buffer):
            if self.json:
                self._on_json_event(json.loads(data))
            else:
                self._on_event(Event.FromString(data))

    # -- JSON: documents, as pymesos hands them to a scheduler --------------------------------

    def _on_json_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "UPDATE":
            status = event["update"]["status"]
            task_id = status["task_id"]
            uuid = status.get("uuid")
            if uuid is not None:  # What pymesos's acknowledgeStatusUpdate sends.
                ack = {
                    "type": "ACKNOWLEDGE",
                    "framework_id": {"value": self.framework_value},
                    "acknowledge": {
                        "agent_id": status["agent_id"],
                        "task_id": task_id,
                        "uuid": uuid,
                    },
                }
                self.bodies.put_nowait(json.dumps(ack).encode())
            self._count(task_id["value"], _STATES[status["state"]], status.get("message", ""))
        elif kind == "OFFERS":
            self._on_json_offers(event["offers"].get("offers", []))
        elif kind == "SUBSCRIBED":
            self.framework_value = event["subscribed"]["framework_id"]["value"]
            self.framework_id.value = self.framework_value
            self.subscribed.set()
        elif kind == "ERROR":
            self.totals.failure = f"framework {self.index}: ERROR {event['error']['message']}"
            self.totals.running_done.set()
            self.totals.finished_done.set()

    def _on_json_offers(self, offers: list[dict[str, Any]]) -> None:
        """As :meth:`BenchFramework._on_event` does with OFFERS, on documents."""
        now = time.time()
        unused = [offer["id"] for offer in offers if not self._on_json_offer(offer, now)]
        if unused:  # One DECLINE for all of them: each call costs both sides dearly.
            refuse = 3600.0 if self.to_launch <= 0 else 5.0
            decline = {"offer_ids": unused, "filters": {"refuse_seconds": refuse}}
            self._send("DECLINE", {"type": "DECLINE", "decline": decline})
        if self.to_launch <= 0 and not self.suppressed:
            self.suppressed = True
            self._send("SUPPRESS", {"type": "SUPPRESS", "suppress": {}})

    def _on_json_offer(self, offer: dict[str, Any], now: float) -> bool:
        """As :meth:`BenchFramework._on_offer`, on a document: launch what fits into
        ``offer``; False if nothing does (the caller declines it)."""
        totals = self.totals
        totals.offers += 1
        available: dict[str, int] = {}
        for resource in offer.get("resources", ()):
            scalar = resource.get("scalar")
            if scalar is not None:
                name = resource["name"]
                available[name] = available.get(name, 0) + round(scalar["value"] * 1000)
        fit = min(available.get(name, 0) // need for name, need in self.needs.items())
        count = min(fit, self.to_launch)
        if self.max_tasks_per_offer:
            count = min(count, self.max_tasks_per_offer)
        if count <= 0:
            return False
        allocation = offer.get("allocation_info")
        role = allocation.get("role") if allocation is not None else None
        resources = self.task_resources_json.get(role)
        if resources is None:
            protos = self.task_resources.to_protos(allocation_role=role)
            resources = self.task_resources_json[role] = [message_json(r) for r in protos]
        agent_id = offer["agent_id"]
        command = {"value": "true"}
        fw = self.framework_value
        tasks = []
        for _ in range(count):
            task_id = f"{self.index}.{self.next_task}"
            self.next_task += 1
            tasks.append(
                {
                    "name": task_id,
                    "task_id": {"value": task_id},
                    "agent_id": agent_id,
                    "resources": resources,
                    "command": command,
                }
            )
            totals.offer_at[(fw, task_id)] = now
        self.to_launch -= count
        totals.launched += count
        launch = {"type": "LAUNCH", "launch": {"task_infos": tasks}}
        accept = {"offer_ids": [offer["id"]], "operations": [launch]}
        sent = time.time()
        if totals.first_accept_at is None:
            totals.first_accept_at = sent
        for task in tasks:
            totals.accept_at[task["name"]] = sent
        totals.accepts += 1
        self._send("ACCEPT", {"type": "ACCEPT", "accept": accept})
        return True

    def _send(self, name: str, call: dict[str, Any]) -> None:
        """A JSON call other than ACKNOWLEDGE: in order, on the framework's call connection."""
        body = {"type": call["type"], "framework_id": {"value": self.framework_value}, **call}
        self.others.append((name, json.dumps(body).encode()))
        self.others_ready.set()

    # -- protobuf ------------------------------------------------------------------------------

    def _on_update(self, status: mesos_pb2.TaskStatus) -> None:
        """A protobuf update: acknowledged in protobuf."""
        if status.uuid:
            call = Call(type=Call.ACKNOWLEDGE, framework_id=self.framework_id)
            call.acknowledge.agent_id.CopyFrom(status.agent_id)
            call.acknowledge.task_id.CopyFrom(status.task_id)
            call.acknowledge.uuid = status.uuid
            self.bodies.put_nowait(call.SerializeToString())
        self._count(status.task_id.value, status.state, status.message)

    def _encode(self, call: Call) -> bytes:
        if self.json:
            return json.dumps(message_json(call)).encode()
        return call.SerializeToString()

    def _call(self, method: Any, call: Call) -> None:
        """ACCEPT, DECLINE, SUPPRESS (protobuf): in order, on the framework's call connection."""
        call.framework_id.CopyFrom(self.framework_id)
        self.others.append((Call.Type.Name(call.type), self._encode(call)))
        self.others_ready.set()

    # -- the connections' workers --------------------------------------------------------------

    async def _other_worker(self) -> None:
        connection = await self._connection()
        while True:
            while not self.others:
                self.others_ready.clear()
                await self.others_ready.wait()
            name, body = self.others.popleft()
            connection = await self._post(connection, name, body)

    async def _ack_worker(self) -> None:
        connection = await self._connection()
        bodies = self.bodies
        while True:
            body = await bodies.get()
            connection = await self._post(connection, "ACKNOWLEDGE", body)

    async def _post(self, connection: HttpConnection, name: str, body: bytes) -> HttpConnection:
        """POST ``body`` on ``connection`` (first opened again if the master closed it while
        idle, as an HTTP client does); the connection to use next."""
        try:
            if connection.closed:
                connection = await self._connection()
            status, answer, _ = await connection.post(self.head, body)
        except (OSError, httptools.HttpParserError) as error:
            connection.close()
            self.totals.failure = f"{name}: the connection failed: {error}"
            return connection
        if status not in (200, 202):
            self.totals.failure = f"{name} answered {status}: {answer.decode(errors='replace')}"
        return connection
