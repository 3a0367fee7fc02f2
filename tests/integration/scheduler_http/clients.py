"""One scheduler client per transport, so the same scenarios run over gRPC and over HTTP.

:class:`HttpScheduler` speaks Mesos's v1 scheduler HTTP API with httpx, in JSON or protobuf,
and decodes the SUBSCRIBE stream with :class:`RecordIODecoder`, written here from the format's
definition (Mesos's ``docs/recordio.md``), not from the master's encoder. :class:`GrpcScheduler`
wraps the gRPC test scheduler. Both answer a call with an :class:`Outcome` (success, or the
code refusing it), and record the events received and the raw stream bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

import httpx
from google.protobuf import json_format
from grpc import aio

from protos.v1 import mesos_pb2, scheduler_pb2
from tests.integration.master.clients import Scheduler, wait_for

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
JSON_MEDIA = "application/json"
PROTOBUF_MEDIA = "application/x-protobuf"

_METHODS = {
    number: "".join(part.capitalize() for part in name.split("_"))
    for name, number in Call.Type.items()
}


class RecordIOError(ValueError):
    """RecordIOError: the bytes are not RecordIO."""


class RecordIODecoder:
    """Reference RecordIO decoder: each record is its length in decimal ASCII digits, ``\\n``,
    then exactly that many bytes; nothing separates records. Fed bytes in any pieces."""

    MAX_HEADER = 20

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The records ``data`` completes, in order. Raises RecordIOError on a bad header."""
        self._buffer += data
        records: list[bytes] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > self.MAX_HEADER:
                    raise RecordIOError(f"no newline in {self._buffer[:30]!r}")
                return records
            header = self._buffer[:newline]
            if not header or not all(48 <= byte <= 57 for byte in header):
                raise RecordIOError(f"record header {header!r} is not a decimal length")
            length = int(header)
            start = newline + 1
            if len(self._buffer) < start + length:
                return records
            records.append(self._buffer[start : start + length])
            self._buffer = self._buffer[start + length :]

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete record."""
        return self._buffer


@dataclass(frozen=True)
class Outcome:
    """What a call got: ``ok``, or ``code`` (gRPC status name or HTTP status) and ``message``."""

    ok: bool
    code: str | int
    message: str = ""


def default_info() -> mesos_pb2.FrameworkInfo:
    return mesos_pb2.FrameworkInfo(user="tester", name="it", failover_timeout=60)


class _Events:
    events: list[scheduler_pb2.Event]

    def of(self, kind: int) -> list[scheduler_pb2.Event]:
        """Events of one type received so far."""
        return [e for e in self.events if e.type == kind]

    def offers(self) -> list[mesos_pb2.Offer]:
        """Every offer received so far."""
        return [o for e in self.of(Event.OFFERS) for o in e.offers.offers]

    def updates(self, task_id: str | None = None) -> list[mesos_pb2.TaskStatus]:
        """Task statuses received so far (of one task)."""
        return [
            e.update.status
            for e in self.of(Event.UPDATE)
            if task_id is None or e.update.status.task_id.value == task_id
        ]


class HttpScheduler(_Events):
    """A scheduler on ``POST /api/v1/scheduler`` of ``http_address``; ``media`` is both the
    body encoding and the stream's (``Accept``)."""

    def __init__(self, http_address: str, media: str = JSON_MEDIA) -> None:
        self.base = f"http://{http_address}"
        self.media = media
        self.client = httpx.AsyncClient(base_url=self.base, timeout=30)
        self.events = []
        self.records: list[bytes] = []
        self.raw = b""
        self.decoder = RecordIODecoder()
        self.stream_id = ""
        self.framework_id = ""
        self.headers: httpx.Headers | None = None
        self.ended = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._response: httpx.Response | None = None

    def body(self, call: scheduler_pb2.Call) -> bytes:
        if self.media == PROTOBUF_MEDIA:
            return call.SerializeToString()
        document = json_format.MessageToDict(call, preserving_proto_field_name=True)
        return json.dumps(document).encode()

    def decode(self, data: bytes) -> scheduler_pb2.Event:
        event = scheduler_pb2.Event()
        if self.media == PROTOBUF_MEDIA:
            event.ParseFromString(data)
        else:
            json_format.ParseDict(json.loads(data), event)
        return event

    async def subscribe(
        self, info: mesos_pb2.FrameworkInfo | None = None, framework_id: str = ""
    ) -> str:
        """SUBSCRIBE; returns the framework id once SUBSCRIBED arrives."""
        call = Call(type=Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(info or default_info())
        if framework_id:
            call.framework_id.value = framework_id
            call.subscribe.framework_info.id.value = framework_id
        request = self.client.build_request(
            "POST",
            "/api/v1/scheduler",
            content=self.body(call),
            headers={"Content-Type": self.media, "Accept": self.media},
        )
        response = await self.client.send(request, stream=True)
        if response.status_code != 200:
            text = (await response.aread()).decode()
            await response.aclose()
            raise AssertionError(f"SUBSCRIBE answered {response.status_code}: {text}")
        self._response = response
        self.headers = response.headers
        self.stream_id = response.headers["Mesos-Stream-Id"]
        self._reader = asyncio.get_running_loop().create_task(self._read(response))
        await wait_for(lambda: bool(self.of(Event.SUBSCRIBED)), "SUBSCRIBED")
        self.framework_id = self.of(Event.SUBSCRIBED)[0].subscribed.framework_id.value
        return self.framework_id

    async def _read(self, response: httpx.Response) -> None:
        try:
            async for chunk in response.aiter_raw():
                self.raw += chunk
                for data in self.decoder.feed(chunk):
                    self.records.append(data)
                    self.events.append(self.decode(data))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    async def send(
        self,
        call: scheduler_pb2.Call,
        stream_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        """Post ``call`` (with this framework's id unless it has one) and this subscription's
        stream id (or ``stream_id``; "" sends none)."""
        if call.type != Call.SUBSCRIBE and not call.HasField("framework_id"):
            call.framework_id.value = self.framework_id
        sid = self.stream_id if stream_id is None else stream_id
        sent = {"Content-Type": self.media, **({"Mesos-Stream-Id": sid} if sid else {})}
        response = await self.client.post(
            "/api/v1/scheduler", content=self.body(call), headers={**sent, **(headers or {})}
        )
        ok = response.status_code in (200, 202)
        return Outcome(ok, response.status_code, response.text)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._response is not None:
            await self._response.aclose()
        await self.client.aclose()


class GrpcScheduler(_Events):
    """The gRPC test scheduler with :meth:`send` answering an :class:`Outcome`."""

    def __init__(self, address: str) -> None:
        self.inner = Scheduler(address)

    @property
    def events(self) -> list[scheduler_pb2.Event]:  # type: ignore[override]
        return self.inner.events

    @property
    def ended(self) -> asyncio.Event:
        return self.inner.ended

    @property
    def stream_id(self) -> str:
        return self.inner.stream_id

    @property
    def framework_id(self) -> str:
        return self.inner.framework_id

    async def subscribe(
        self, info: mesos_pb2.FrameworkInfo | None = None, framework_id: str = ""
    ) -> str:
        return await self.inner.subscribe(info or default_info(), framework_id)

    async def send(self, call: scheduler_pb2.Call, stream_id: str | None = None) -> Outcome:
        try:
            await self.inner.call(call, _METHODS[call.type], stream_id)
        except aio.AioRpcError as error:
            return Outcome(False, error.code().name, error.details() or "")
        return Outcome(True, "OK")

    async def close(self) -> None:
        await self.inner.close()
