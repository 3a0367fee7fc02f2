"""Benchmark frameworks on Mesos's v1 scheduler HTTP API (``bench.launch_throughput --api http``).

Each :class:`HttpBenchFramework` does what a pymesos scheduler does on the wire: SUBSCRIBE as a
``POST /api/v1/scheduler`` answered by a chunked stream of RecordIO-framed events, then one POST
per ACCEPT, DECLINE, SUPPRESS and per ACKNOWLEDGE, with the ``Mesos-Stream-Id`` header, in JSON
built as pymesos builds it (``acknowledge`` copies the update's ``agent_id``, ``task_id`` and
base64 ``uuid`` as received) or, with ``content="protobuf"``, in protobuf.

The client must be cheap: it shares a small machine with the master it measures, and its CPU is
counted in ``bench_cpu_s``. So it is raw asyncio streams, not an HTTP library: each framework
keeps a few keep-alive connections (one per acknowledgement worker, one for its other calls),
each carrying one request at a time as HTTP/1.1 allows without pipelining, and reads JSON
updates straight from the parsed dict (only OFFERS, a few per second, become protobuf).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

import grpc.aio

from bench.launch_throughput import BenchFramework, Totals
from protos.mesos_http import message_from_json, message_json
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = ["HttpBenchFramework", "HttpCallError", "HttpConnection"]

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
PATH = "/api/v1/scheduler"
_STATES: dict[str, int] = dict(mesos_pb2.TaskState.items())


class HttpCallError(RuntimeError):
    """HttpCallError: the master answered a call with an error status, or broke the protocol."""


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to the master: one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect (again)."""
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        """Close the connection (if open)."""
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        """Send ``head`` (request line and headers up to ``Content-Length: ``) with ``body``;
        the status, body and headers (names lowercase) of the answer, read whole unless it is
        chunked (then the body is left to :meth:`chunks`)."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        status = int(lines[0][9:12])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding") == b"chunked":
            return status, b"", headers
        length = int(headers.get(b"content-length", b"0"))
        answer = await self.reader.readexactly(length) if length else b""
        if headers.get(b"connection") == b"close":
            self.close()
        return status, answer, headers

    async def chunks(self) -> Any:
        """The chunks of a chunked body, until its last (an async iterator of bytes)."""
        assert self.reader is not None
        reader = self.reader
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]


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
        self.others: deque[tuple[int, bytes]] = deque()
        self.others_ready = asyncio.Event()
        self.connections: list[HttpConnection] = []

    def _connection(self) -> HttpConnection:
        connection = HttpConnection(self.host, self.port)
        self.connections.append(connection)
        return connection

    async def run(self) -> None:
        """Subscribe and handle events until cancelled; a failure ends the whole run."""
        try:
            await self._run()
        except (HttpCallError, OSError, ValueError, KeyError, asyncio.IncompleteReadError) as error:
            self.totals.failure = f"framework {self.index}: {type(error).__name__}: {error}"
            self.totals.running_done.set()
            self.totals.finished_done.set()

    async def _run(self) -> None:
        info = mesos_pb2.FrameworkInfo(user="bench", name=f"bench-{self.index}")
        subscribe = Call(type=Call.SUBSCRIBE, subscribe=Call.Subscribe(framework_info=info))
        stream = self._connection()
        status, body, headers = await stream.post(self.head, self._encode(subscribe))
        if status != 200:
            raise HttpCallError(f"SUBSCRIBE answered {status}: {body.decode(errors='replace')}")
        stream_id = headers[b"mesos-stream-id"]
        self.head = self.base_head + b"Mesos-Stream-Id: %s\r\nContent-Length: " % stream_id
        workers = [asyncio.create_task(self._ack_worker()) for _ in range(self.ack_workers)]
        workers.append(asyncio.create_task(self._other_worker()))
        buffer = bytearray()
        try:
            async for chunk in stream.chunks():
                buffer += chunk
                for data in records(buffer):
                    if self.json:
                        self._on_json_event(json.loads(data))
                    else:
                        self._on_event(Event.FromString(data))
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for connection in self.connections:
                connection.close()

    def _on_json_event(self, event: dict[str, Any]) -> None:
        """One event in Mesos's JSON: updates read from the dict, the rest through protobuf."""
        if event["type"] == "UPDATE":
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
        else:
            self._on_event(message_from_json(event, Event()))
            if event["type"] == "SUBSCRIBED":
                self.framework_value = self.framework_id.value

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
        """ACCEPT, DECLINE, SUPPRESS: in order, on the framework's call connection."""
        call.framework_id.CopyFrom(self.framework_id)
        self.others.append((call.type, self._encode(call)))
        self.others_ready.set()

    async def _other_worker(self) -> None:
        connection = self._connection()
        while True:
            while not self.others:
                self.others_ready.clear()
                await self.others_ready.wait()
            kind, body = self.others.popleft()
            await self._post(connection, Call.Type.Name(kind), body)  # type: ignore[arg-type]

    async def _ack_worker(self) -> None:
        connection = self._connection()
        bodies = self.bodies
        while True:
            await self._post(connection, "ACKNOWLEDGE", await bodies.get())

    async def _post(self, connection: HttpConnection, name: str, body: bytes) -> None:
        try:
            status, answer, _ = await connection.post(self.head, body)
        except (OSError, asyncio.IncompleteReadError) as error:
            connection.close()
            self.totals.failure = f"{name}: the connection failed: {error}"
            return
        if status not in (200, 202):
            self.totals.failure = f"{name} answered {status}: {answer.decode(errors='replace')}"
