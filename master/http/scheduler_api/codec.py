"""Bodies of the scheduler HTTP API: media types, Calls in, RecordIO-framed Events out.

A call's body is a ``mesos.v1.scheduler.Call`` in JSON (``application/json``) or protobuf
(``application/x-protobuf``), as its ``Content-Type`` says. The SUBSCRIBE stream is written in
the encoding its ``Accept`` header allows, JSON first when both are (Mesos's order), each event
framed as one RecordIO record: the length of the encoded event in decimal ASCII, a newline, the
event's bytes (Mesos's ``src/common/recordio.hpp``; no separator after a record).

Media types are compared without their parameters and case (``application/json;
charset=utf-8`` is JSON), where Mesos compares the whole header: a client that Mesos accepts is
accepted here too.
"""

from __future__ import annotations

import json

from protos.mesos_http import (
    APPLICATION_JSON,
    APPLICATION_PROTOBUF,
    BodyError,
    decode_body,
    message_json,
    record,
    stream_media_type,
)
from protos.v1 import scheduler_pb2

__all__ = [
    "APPLICATION_JSON",
    "APPLICATION_PROTOBUF",
    "ApiError",
    "accepted_media_type",
    "decode_call",
    "encode_events",
    "record",
]


class ApiError(Exception):
    """ApiError refuses a request: ``status`` is the HTTP status, ``message`` the body (plain
    text, as Mesos answers), ``headers`` any the answer needs (``Allow``, ``Location``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def decode_call(content_type: str | None, body: bytes) -> scheduler_pb2.Call:
    """The Call in ``body``. Raises ApiError: 400 (no Content-Type, or a body that is not a
    Call), 415 (neither JSON nor protobuf)."""
    try:
        return decode_body(content_type, body, scheduler_pb2.Call())
    except BodyError as error:
        raise ApiError(error.status, error.message) from None


def accepted_media_type(accept: str | None) -> str:
    """The encoding of a SUBSCRIBE stream for the ``Accept`` header ``accept`` (none: JSON).
    Raises ApiError 406 when it allows neither JSON nor protobuf."""
    media = stream_media_type(accept)
    if media is None:
        raise ApiError(
            406, f"Expecting 'Accept' to allow '{APPLICATION_PROTOBUF}' or '{APPLICATION_JSON}'"
        )
    return media


def encode_events(events: list[scheduler_pb2.Event], media: str) -> bytes:
    """``events`` encoded in ``media``, one RecordIO record each, back to back."""
    if media == APPLICATION_PROTOBUF:
        return b"".join(record(event.SerializeToString()) for event in events)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    return b"".join(record(dumps(message_json(event)).encode()) for event in events)
