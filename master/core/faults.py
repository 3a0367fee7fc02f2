"""Faults: what happens when the core itself fails on an input (a bug, never a refusal).

A refusal is a :class:`~master.core.errors.CallError`, raised before anything changes. A fault is
any other exception escaping a handler. The core cannot undo what the handler changed before it
failed, so it does the next best thing, in one place (:meth:`Master._guard`):

* the effects gathered up to the fault are kept: they describe changes that did happen, and
  peers must hear of them (dropping them would let the state and the peers drift apart);
* the invariants are checked at once and any breakage is logged beside the fault;
* the fault is logged with a bounded description of the input that caused it;
* the caller gets a :class:`CoreFaultError` carrying those effects and a message fit for the peer:
  the runtime carries the effects out, answers that one call (gRPC ``INTERNAL`` naming the
  call) or that one agent message, and goes on serving everyone else.

Agent messages are guarded one by one: a fault in one message of a batch skips that message only.
A status update whose bookkeeping failed is still forwarded to its framework, so a bug in the
master never strands a terminal update (the agent keeps retrying until it is acknowledged).
"""

from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.message import Message

from master.core.effects import Effect

__all__ = ["CoreFaultError", "describe"]

DESCRIPTION_LIMIT = 400
"""At most this many characters of an input are quoted in a log line or an error message."""


def describe(message: Message, limit: int = DESCRIPTION_LIMIT) -> str:
    """A one-line, bounded text form of ``message`` for logs and error messages."""
    text = text_format.MessageToString(message, as_one_line=True, print_unknown_fields=False)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


class CoreFaultError(Exception):
    """CoreFaultError: the core failed on one input; ``effects`` are the changes made before it.

    ``what`` names the input (``ACCEPT call of framework F``, ``reregistration of agent A``);
    ``message`` is what the peer is told.
    """

    def __init__(self, what: str, error: BaseException, effects: list[Effect]) -> None:
        self.what = what
        self.error = error
        self.effects = effects
        self.message = (
            f"the master failed to handle the {what} ({type(error).__name__}: "
            f"{str(error)[:DESCRIPTION_LIMIT]}); this is a bug in the master, and it was logged"
        )
        super().__init__(self.message)
