"""What can go wrong talking to a master, each with the exit status the command line gives it.

::

    ClientError             exit 1: the master refused a call (a 409, say); the message is its own
    ├── UsageError          exit 2: bad input (a malformed --master, no master given, a bad filter)
    ├── UnreachableError    exit 2: "cannot reach the master at X: <why>"
    └── NotFoundError       exit 2: an unknown task or framework id (the message names it)

Library errors (httpx, grpc, kazoo) are translated into these once, where the call is made, so a
command prints one line and never a traceback.
"""

from __future__ import annotations

__all__ = ["ClientError", "NotFoundError", "UnreachableError", "UsageError"]


class ClientError(Exception):
    """ClientError: a call to the master failed; ``str()`` is the one line to print."""

    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ClientError):
    """UsageError: what the user gave cannot work (the message says which flag and why)."""

    exit_status = 2


class UnreachableError(ClientError):
    """UnreachableError: no answer from the master at ``address``."""

    exit_status = 2

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot reach the master at {address}: {reason}")
        self.address = address
        self.reason = reason


class NotFoundError(ClientError):
    """NotFoundError: the master knows no task or framework by that id."""

    exit_status = 2
