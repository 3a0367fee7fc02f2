"""Errors the master's state machine returns for calls it refuses, and how they quote input.

A refused call changes nothing. The runtime maps each :class:`ErrorCode` to one gRPC status code
(the value of the enum member is that code's name)::

    ErrorCode.INVALID_ARGUMENT     malformed call or payload (Mesos: 400 Bad Request)
    ErrorCode.FAILED_PRECONDITION  framework not subscribed, or torn down (Mesos: 403)
    ErrorCode.PERMISSION_DENIED    call from a superseded subscription stream
    ErrorCode.NOT_FOUND            an agent or framework the call names is unknown

Messages quote what the caller sent through :func:`shown`, which keeps a bounded prefix: an
error that echoed a 10 KB stream id in full would not fit gRPC's status trailer (8 KB by
default) and reach the caller as RESOURCE_EXHAUSTED instead of the error meant. As a backstop,
a :class:`CallError` message longer than :data:`MAX_ERROR_CHARS` is cut there.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["MAX_ERROR_CHARS", "MAX_SHOWN_CHARS", "CallError", "ErrorCode", "invalid", "shown"]

MAX_SHOWN_CHARS = 100
"""How much of one input value an error message quotes."""

MAX_ERROR_CHARS = 2000
"""The longest CallError message (well inside gRPC's 8 KB status trailer, even when the message
is percent-encoded there)."""


class ErrorCode(Enum):
    """ErrorCode says why a call was refused; values are gRPC status code names."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"


def shown(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``value`` quoted for an error message (as ``repr`` does), at most ``limit`` characters
    of it; a longer one ends with ``...`` and says how long it was: ``'aaaa'... (10240 chars)``.
    """
    if isinstance(value, str | bytes):
        if len(value) <= limit:
            return repr(value)
        unit = "bytes" if isinstance(value, bytes) else "chars"
        return f"{value[:limit]!r}... ({len(value)} {unit})"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class CallError(Exception):
    """CallError refuses a call: ``code`` says what kind of refusal, ``message`` what is wrong.

    Messages name the offending field the way the call spells it (``accept.offer_ids[1]``) and
    quote input through :func:`shown`; one longer than :data:`MAX_ERROR_CHARS` is cut there.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 15] + "... (truncated)"
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CallError({self.code.name}, {self.message!r})"


def invalid(message: str) -> CallError:
    """A CallError with code INVALID_ARGUMENT."""
    return CallError(ErrorCode.INVALID_ARGUMENT, message)
