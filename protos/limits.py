"""Message-size limits: one limit for every gRPC message between Emporion's processes.

gRPC refuses a message larger than the receiver's ``grpc.max_receive_message_length`` (4 MiB by
default) and, when it is a message on a stream, ends the whole stream. A master that takes calls
of up to 256 MiB but talks to agents that take 4 MiB accepts a task it can never deliver: the
RunTask message breaks the agent's session and the task comes back TASK_LOST. So there is one
limit, :data:`MAX_MESSAGE_BYTES`, and every channel and server is built with
:data:`GRPC_MESSAGE_OPTIONS`, in both directions:

* the master's gRPC server (scheduler API and agent gateway);
* the agent's channel to the master, and the SDK's channels (scheduler and executor);
* the master refuses at ACCEPT a task whose RunTask message (with its executor and the
  FrameworkInfo sent along) would not fit (:func:`fits`), with TASK_ERROR naming both sizes;
* whoever packs several messages into one (``MasterMessages``, ``Events``, ``Calls``) splits the
  batch with :func:`batches` so that no batch exceeds the limit.

16 MiB leaves room for an OFFERS event of tens of thousands of offers and for an agent that
reregisters with thousands of tasks, while keeping a single message's decode cost bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from google.protobuf.message import Message

__all__ = [
    "GRPC_MESSAGE_OPTIONS",
    "MAX_MESSAGE_BYTES",
    "batches",
    "fits",
    "framed_size",
]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""The largest serialized message any Emporion process sends or accepts over gRPC (16 MiB)."""

GRPC_MESSAGE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)
"""gRPC channel and server options that apply :data:`MAX_MESSAGE_BYTES` both ways; add them to
any other options (``options=[*GRPC_MESSAGE_OPTIONS, ...]``)."""

M = TypeVar("M", bound=Message)


def _varint_size(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def framed_size(message: Message) -> int:
    """Bytes ``message`` takes as one element of a repeated field of a batch message.

    That is its serialized size plus the field's tag and length prefix; a batch of one such
    element serializes to exactly this many bytes when the field number is below 16 (as the
    ``messages``/``events``/``calls`` fields of Emporion's batch messages are).
    """
    size = message.ByteSize()
    return 1 + _varint_size(size) + size


def fits(message: Message, limit: int = MAX_MESSAGE_BYTES) -> bool:
    """Whether ``message`` can be sent, alone or in a batch of its own, under ``limit``."""
    return framed_size(message) <= limit


def batches(messages: Iterable[M], limit: int = MAX_MESSAGE_BYTES) -> Iterator[list[M]]:
    """``messages`` in order, grouped so that each group's batch message stays under ``limit``.

    A message too large even alone is yielded in a group of its own: the sender must have
    refused it earlier (see :func:`fits`), and sending it alone keeps the others deliverable.
    """
    group: list[M] = []
    size = 0
    for message in messages:
        framed = framed_size(message)
        if group and size + framed > limit:
            yield group
            group, size = [], 0
        group.append(message)
        size += framed
    if group:
        yield group
