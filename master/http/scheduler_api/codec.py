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

import binascii
import json
import math
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

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
    "message_text",
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
    return b"".join(record(message_text(event).encode()) for event in events)


# -- Mesos's JSON as text -------------------------------------------------------------------------
#
# message_text(m) is json.dumps(message_json(m), separators=(",", ":")) (ASCII, as json.dumps
# writes by default) written straight from the message, without the dicts in between: an event
# stream writes one JSON text per event, and building the dicts then encoding them cost about
# twice as much. Each scalar is written as json.dumps writes what message_json gives for it.
# A message with a map field is written through message_json itself (maps are rare in events).
#
# The plans are kept per message class and keyed by field descriptor (the very objects
# ListFields returns, which the plan keeps alive), so writing a field looks nothing up by name;
# messages of one string field ``value`` (TaskID, AgentID, FrameworkID, ...: three in every
# status update) are written without listing their fields. A field a plan does not know (a
# descriptor object that is not the one it holds) sends the message through message_json.

_T = FieldDescriptor
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_Write = Callable[[Any], str]
_Plan = dict[Any, tuple[str, bool, _Write]]
_text_plans: dict[type, _Plan | None] = {}
_VALUE_ONLY: _Plan = {}
"""The plan of a message whose one field is the string ``value``."""


def _double(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return '"NaN"' if math.isnan(value) else ('"Infinity"' if value > 0 else '"-Infinity"')


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _bytes(value: bytes) -> str:
    return '"' + binascii.b2a_base64(value, newline=False).decode("ascii") + '"'


def _enum(field: FieldDescriptor) -> _Write:
    enum_type = field.enum_type
    assert enum_type is not None
    names = {number: _quote(value.name) for number, value in enum_type.values_by_number.items()}

    def name(value: int) -> str:
        written = names.get(value)
        return written if written is not None else int.__repr__(value)  # Unknown: a number.

    return name


def _writer(field: FieldDescriptor) -> _Write:
    kind = field.type
    if kind in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
        return message_text
    if kind == _T.TYPE_ENUM:
        return _enum(field)
    if kind == _T.TYPE_BYTES:
        return _bytes
    if kind in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return _double
    if kind == _T.TYPE_BOOL:
        return _boolean
    if kind == _T.TYPE_STRING:
        return _quote
    return int.__repr__


def _text_plan(kind: type) -> _Plan | None:
    """Field descriptor -> (its JSON key and colon, repeated, writer) for messages of class
    ``kind``; :data:`_VALUE_ONLY` for a one-``value`` message; None for a type with maps."""
    descriptor: Any = kind.DESCRIPTOR  # type: ignore[attr-defined]
    fields = descriptor.fields
    plan: _Plan | None = {}
    if (
        len(fields) == 1
        and fields[0].name == "value"
        and fields[0].type == _T.TYPE_STRING
        and not fields[0].is_repeated
    ):
        plan = _VALUE_ONLY
    for field in fields:
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            plan = None
            break
        assert plan is not None
        if plan is not _VALUE_ONLY:
            plan[field] = (_quote(field.name) + ":", field.is_repeated, _writer(field))
    _text_plans[kind] = plan
    return plan


def message_text(message: Message) -> str:
    """``message`` in Mesos's JSON (:func:`~protos.mesos_http.message_json`) as compact text."""
    kind = type(message)
    plan = _text_plans[kind] if kind in _text_plans else _text_plan(kind)
    if plan is _VALUE_ONLY:
        value: str = message.value  # type: ignore[attr-defined]
        if value or message.HasField("value"):
            return '{"value":' + _quote(value) + "}"
        return "{}"
    if plan is None:
        return _dumps(message_json(message))
    parts = []
    for field, value in message.ListFields():
        entry = plan.get(field)
        if entry is None:
            return _dumps(message_json(message))
        key, repeated, write = entry
        if repeated:
            parts.append(key + "[" + ",".join([write(item) for item in value]) + "]")
        else:
            parts.append(key + write(value))
    return "{" + ",".join(parts) + "}"
