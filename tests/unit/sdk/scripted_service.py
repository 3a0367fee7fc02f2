"""What the scripted gRPC services of the SDK's tests share (ScriptedMaster, ScriptedAgent).

:class:`ScriptedService` serves one gRPC service on 127.0.0.1 (port 0 the first time, the same
port after a stop) from a thread pool, and keeps the streams it opened: each stream writes what
the test pushes onto its outbox (events, then maybe an end: ``None`` ends it cleanly, a
``(code, message)`` pair ends it with that status). Also here: :data:`WAIT_SECONDS` and the
helpers that run async test bodies against such a service.

Waiting helpers take a generous timeout only so that a broken test fails instead of hanging;
no test asserts on how long anything took.
"""

from __future__ import annotations

import abc
import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

import grpc
from google.protobuf.message import Message

__all__ = [
    "WAIT_SECONDS",
    "ScriptedService",
    "ScriptedStream",
    "off_loop",
    "run",
    "stream_handler",
    "unary_handler",
]

WAIT_SECONDS = 20.0

T = TypeVar("T")
_EventT = TypeVar("_EventT")
_StreamT = TypeVar("_StreamT", bound="ScriptedStream[Any]")
_CallT = TypeVar("_CallT")


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async test body, failing (not hanging) if it gets stuck."""

    async def guarded() -> T:
        async with asyncio.timeout(WAIT_SECONDS * 2):
            return await test()

    return asyncio.run(guarded())


async def off_loop(wait: Callable[[], T]) -> T:
    """Run a blocking wait of a scripted service without blocking the client's loop."""
    return await asyncio.to_thread(wait)


def unary_handler(
    behaviour: Callable[..., Any], request: type[Message], reply: type[Message]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary-unary method handler over protobuf messages."""
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=request.FromString,
        response_serializer=reply.SerializeToString,
    )


def stream_handler(
    behaviour: Callable[..., Any], request: type[Message], reply: type[Message]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary-stream method handler over protobuf messages."""
    return grpc.unary_stream_rpc_method_handler(
        behaviour,
        request_deserializer=request.FromString,
        response_serializer=reply.SerializeToString,
    )


@dataclass(kw_only=True)
class ScriptedStream(Generic[_EventT]):
    """One stream the service opened: what the test pushed, not written yet."""

    outbox: queue.Queue[_EventT | tuple[grpc.StatusCode, str] | None] = field(
        default_factory=queue.Queue
    )


class ScriptedService(abc.ABC, Generic[_CallT, _EventT, _StreamT]):
    """A gRPC service played from a script: see the module docstring.

    Use as a context manager or start()/stop().
    """

    # The full name of the gRPC service served ("mesos.v1.scheduler.Scheduler").
    _service: ClassVar[str]
    _max_workers: ClassVar[int]
    # Written onto every open stream by stop(): None ends them cleanly, a status fails them.
    _end_on_stop: ClassVar[tuple[grpc.StatusCode, str] | None] = None

    def __init__(self) -> None:
        self.port = 0
        self.subscribe_calls: list[_CallT] = []
        self._cond = threading.Condition()
        self._streams: list[_StreamT] = []
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None

    @abc.abstractmethod
    def _handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """The service's methods by name."""

    # -- lifecycle --

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Serve on 127.0.0.1: port 0 the first time, the same port after a stop(); returns
        ``"host:port"``."""
        self._executor = futures.ThreadPoolExecutor(max_workers=self._max_workers)
        server = grpc.server(self._executor)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(self._service, self._handlers()),)
        )
        port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        assert port, f"could not bind 127.0.0.1:{self.port}"
        server.start()
        self._server = server
        self.port = port
        return self.address

    def stop(self) -> None:
        """End every stream and stop serving."""
        with self._cond:
            for stream in self._streams:
                stream.outbox.put(self._end_on_stop)
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        if self._executor is not None:  # Its threads end once their streams saw the stop.
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the service --

    def _opened(self, stream: _StreamT) -> None:
        """Keep a newly opened stream (the latest is the current one)."""
        with self._cond:
            self._streams.append(stream)
            self._cond.notify_all()

    def _written(
        self, stream: _StreamT, context: grpc.ServicerContext, *, batched: bool = False
    ) -> Iterator[list[_EventT]]:
        """The events pushed onto ``stream``, until it ends or the call does: one at a time, or
        everything queued at once if ``batched`` (as the real master writes them then)."""
        while context.is_active():
            try:
                item = stream.outbox.get(timeout=0.02)
            except queue.Empty:
                continue
            items = [item]
            if batched:
                while items[-1] is not None and not isinstance(items[-1], tuple):
                    try:
                        items.append(stream.outbox.get_nowait())
                    except queue.Empty:
                        break
            events = [i for i in items if i is not None and not isinstance(i, tuple)]
            if events:
                yield events
            last = items[-1]  # Only the last item can be an end of the stream.
            if last is None:
                return
            if isinstance(last, tuple):
                context.abort(*last)

    # -- scripting --

    @property
    def current_stream(self) -> _StreamT:
        """The latest stream opened."""
        with self._cond:
            assert self._streams, "no stream opened yet"
            return self._streams[-1]

    def send(self, *events: _EventT) -> None:
        """Push events onto the current stream, in order."""
        stream = self.current_stream
        for event in events:
            stream.outbox.put(event)

    def end_stream(self) -> None:
        """End the current stream cleanly (status OK)."""
        self.current_stream.outbox.put(None)

    def fail_stream(self, code: grpc.StatusCode, message: str) -> None:
        """End the current stream with an error status."""
        self.current_stream.outbox.put((code, message))

    # -- waiting --

    def _wait(self, predicate: Callable[[], bool], failure: Callable[[], str]) -> None:
        """Wait (holding the lock) until ``predicate`` holds; else fail saying ``failure()``."""
        with self._cond:
            assert self._cond.wait_for(predicate, WAIT_SECONDS), failure()

    def wait_subscribes(self, count: int) -> list[_CallT]:
        """Wait until ``count`` SUBSCRIBE calls arrived; all of them, in order."""
        self._wait(
            lambda: len(self.subscribe_calls) >= count,
            lambda: f"expected {count} SUBSCRIBE calls, got {len(self.subscribe_calls)}",
        )
        with self._cond:
            return list(self.subscribe_calls)

    def wait_streams(self, count: int) -> None:
        """Wait until ``count`` streams have been opened."""
        self._wait(
            lambda: len(self._streams) >= count,
            lambda: f"expected {count} streams, got {len(self._streams)}",
        )
