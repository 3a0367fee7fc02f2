"""Registering the gRPC services so that bytes that do not parse get a precise answer.

gRPC decodes a request before any servicer code runs; when the bytes are not the message the
method takes, it answers ``UNKNOWN`` ("Unexpected DecodeError") and logs a traceback, as if the
master had failed. Here every method's request deserializer is wrapped: bytes that do not parse
become an :class:`Undecodable` value, which the servicers refuse with ``INVALID_ARGUMENT``
naming the message type and the parse error (:func:`refuse_undecodable`), like any other bad
input: logged at debug level, nothing changed, the connection and every other peer unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

__all__ = ["Undecodable", "add_tolerant", "refuse_undecodable", "undecodable"]


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
