"""Registering the gRPC services so that bytes that do not parse get a precise answer.

gRPC decodes a request before any servicer code runs; when the bytes are not the message the
method takes, it answers ``UNKNOWN`` ("Unexpected DecodeError") and logs a traceback, as if the
master had failed. Here every method's request deserializer is wrapped: bytes that do not parse
become an :class:`Undecodable` value, which the servicers refuse with ``INVALID_ARGUMENT``
naming the message type and the parse error (:func:`refuse_undecodable`), like any other bad
input: logged at debug level, nothing changed, the connection and every other peer unaffected.

:func:`keepalive_options` are the server's HTTP/2 keepalive settings, with which gRPC's C core
checks every connection (each agent's included) without any Python: see
:mod:`master.core.liveness` for why the master's liveness checks of agents rely on them.
:func:`check_port_free` says which port is busy in one line, before gRPC would (in a log).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

__all__ = [
    "AGENT_KEEPALIVE_MS",
    "Undecodable",
    "add_tolerant",
    "check_port_free",
    "keepalive_options",
    "refuse_undecodable",
    "undecodable",
]

AGENT_KEEPALIVE_MS = 10_000
"""How often an agent's channel PINGs the master (``agent.runtime.master_link``'s channel
options); the server allows pings twice as often before it would complain."""

KEEPALIVE_TIMEOUT_FLOOR_MS = 5_000
"""The least time a PING gets for its answer: below it a loaded machine (a peer's gRPC threads
waiting for a core) would lose connections that are fine."""


def keepalive_options(ping_timeout: float) -> list[tuple[str, int]]:
    """The server's channel arguments for HTTP/2 keepalive, given ``--agent-ping-timeout``.

    The master PINGs every connection each ``ping_timeout`` (at least each second) and closes
    one whose PING is not answered within ``ping_timeout`` (at least
    :data:`KEEPALIVE_TIMEOUT_FLOOR_MS`): the stream of a frozen or vanished agent then breaks,
    and the master takes the agent for disconnected. PINGs go on whether or not data flows
    (an idle agent's stream carries none for minutes), and peers' own keepalive PINGs are
    allowed from every ``AGENT_KEEPALIVE_MS / 2`` and never held against them (a GOAWAY for
    "too many pings" would cut off every agent on that connection).
    """
    ms = int(ping_timeout * 1000)
    return [
        ("grpc.keepalive_time_ms", max(ms, 1000)),
        ("grpc.keepalive_timeout_ms", max(ms, KEEPALIVE_TIMEOUT_FLOOR_MS)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", AGENT_KEEPALIVE_MS // 2),
        ("grpc.http2.max_ping_strikes", 0),
        # What closes the connection in gRPC >= 1.6x: keepalive_timeout_ms alone does not (a
        # SIGSTOPped agent stayed connected for minutes), the ping timeout (default 1 min) does.
        ("grpc.http2.ping_timeout_ms", max(ms, KEEPALIVE_TIMEOUT_FLOOR_MS)),
    ]


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Undecodable stands for a request whose bytes are not a ``message_type``."""

    message_type: str
    size: int
    error: str

    @property
    def description(self) -> str:
        """What is wrong, for the peer."""
        return f"the request is not a valid {self.message_type} ({self.size} bytes): {self.error}"


def undecodable(request: object) -> Undecodable | None:
    """``request`` if it stands for bytes that did not parse, else None (typed as the message
    the servicer declares, the request may still be an :class:`Undecodable`)."""
    return request if isinstance(request, Undecodable) else None


async def refuse_undecodable(
    request: Undecodable, context: aio.ServicerContext[object, object]
) -> NoReturn:
    """Answer a request that did not parse with INVALID_ARGUMENT."""
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.description)
    raise AssertionError("unreachable")  # abort raises


def _tolerant(decode: Callable[[bytes], Any], message_type: str) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except (DecodeError, ValueError) as error:
            return Undecodable(message_type, len(data), str(error)[:200])

    return deserialize


class _Capture:
    """Stands in for a server while a generated ``add_*_to_server`` registers its handlers."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        """Ignored: the same handlers are registered again by name below."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Keep the method handlers of ``service``."""
        self.services[service] = handlers


def add_tolerant(
    add_to_server: Callable[[Any, Any], None], servicer: object, server: aio.Server
) -> None:
    """``add_to_server(servicer, server)`` with every request deserializer made tolerant."""
    capture = _Capture()
    add_to_server(servicer, capture)
    for service, handlers in capture.services.items():
        wrapped = {}
        for name, handler in handlers.items():
            decode = handler.request_deserializer
            owner = getattr(decode, "__self__", None)
            message_type = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "message")
            wrapped[name] = handler._replace(
                request_deserializer=_tolerant(decode, str(message_type))
            )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        registered: Any = server  # Typed in grpcio >= 1.63; its stubs do not know it yet.
        registered.add_registered_method_handlers(service, wrapped)


def check_port_free(host: str, port: int) -> None:
    """Raise OSError naming ``host:port`` when it cannot be bound: gRPC would say so only in a
    multi-line log of its own (and a RuntimeError without the reason)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(
                f"cannot serve gRPC on {host}:{port} (--port): {error.strerror or error}"
            ) from None
