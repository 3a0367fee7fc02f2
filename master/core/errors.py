"""Errors the master's state machine returns for calls it refuses.

A refused call changes nothing. The runtime maps each :class:`ErrorCode` to one gRPC status code
(the value of the enum member is that code's name)::

    ErrorCode.INVALID_ARGUMENT     malformed call or payload (Mesos: 400 Bad Request)
    ErrorCode.FAILED_PRECONDITION  framework not subscribed, or torn down (Mesos: 403)
    ErrorCode.PERMISSION_DENIED    call from a superseded subscription stream
    ErrorCode.NOT_FOUND            an agent or framework the call names is unknown
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CallError", "ErrorCode"]


class ErrorCode(Enum):
    """ErrorCode says why a call was refused; values are gRPC status code names."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"


class CallError(Exception):
    """CallError refuses a call: ``code`` says what kind of refusal, ``message`` what is wrong.

    Messages name the offending field the way the call spells it (``accept.offer_ids[1]``).
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CallError({self.code.name}, {self.message!r})"


def invalid(message: str) -> CallError:
    """A CallError with code INVALID_ARGUMENT."""
    return CallError(ErrorCode.INVALID_ARGUMENT, message)
