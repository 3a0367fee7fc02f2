"""Protobuf messages as Mesos writes them in JSON, and scheduler Calls read from Mesos's JSON.

Mesos's JSON (stout's ``JSON::protobuf``) is not protobuf's canonical JSON mapping: 64-bit
integers are JSON numbers, not strings (``"begin": 31000``, where ``json_format`` writes
``"31000"``), fields keep their ``.proto`` names, enums are written by name, ``bytes`` in
base64, and only fields that are set appear. A pymesos scheduler does arithmetic on port ranges
and compares ``status["state"]`` with ``"TASK_RUNNING"``, so the events go out in exactly that
form. :func:`message_json` builds it from the descriptors, with a plan cached per message type
(several times cheaper than ``json_format.MessageToDict`` plus a pass to turn strings back into
numbers): an UPDATE event is written for every status update of an HTTP framework.

Reading is lenient where Mesos is: numbers or strings for 64-bit integers, enum names (or
numbers), base64 for bytes, and fields this master does not know are ignored, as Mesos ignores
them (Emporion leaves out a few exotic Mesos messages, ``protos/v1/mesos.proto``). An enum value
it does not know is an error naming the field, as in Mesos.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from protos.v1 import scheduler_pb2

__all__ = ["CallJsonError", "call_from_json", "message_json"]

JSON = dict[str, Any]

_Convert = Callable[[Any], Any]
_plans: dict[str, dict[str, tuple[str, bool, _Convert | None]]] = {}
"""Per message type (full name): field name -> (JSON key, repeated, converter or None)."""

_T = FieldDescriptor


class CallJsonError(ValueError):
    """CallJsonError: a JSON document that is not a ``mesos.v1.scheduler.Call``; the message
    names the field (``json_format``'s words)."""


def _float(value: float) -> float | str:
    # JSON has no NaN or infinities; protobuf's JSON mapping spells them as strings.
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _enum(field: FieldDescriptor) -> _Convert:
    enum_type = field.enum_type
    assert enum_type is not None
    names = {number: value.name for number, value in enum_type.values_by_number.items()}

    def name(value: int) -> str | int:
        return names.get(value, value)  # An unknown number stays a number, as Mesos writes it.

    return name


def _converter(field: FieldDescriptor) -> _Convert | None:
    kind = field.type
    if kind in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
        return message_json
    if kind == _T.TYPE_ENUM:
        return _enum(field)
    if kind == _T.TYPE_BYTES:
        return _bytes
    if kind in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return _float
    return None  # Strings, booleans and integers of every width are JSON as they are.


def _plan(descriptor: Any) -> dict[str, tuple[str, bool, _Convert | None]]:
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = {
            field.name: (field.name, field.is_repeated, _converter(field))
            for field in descriptor.fields
        }
        _plans[descriptor.full_name] = plan
    return plan


def message_json(message: Message) -> JSON:
    """``message`` as Mesos writes it in JSON (see the module docstring)."""
    plan = _plan(message.DESCRIPTOR)
    result: JSON = {}
    for field, value in message.ListFields():
        key, repeated, convert = plan[field.name]
        if convert is None:
            result[key] = list(value) if repeated else value
        elif repeated:
            result[key] = [convert(item) for item in value]
        else:
            result[key] = convert(value)
    return result


def call_from_json(document: object) -> scheduler_pb2.Call:
    """The Call a parsed JSON document holds. Raises CallJsonError naming the bad field."""
    if not isinstance(document, dict):
        raise CallJsonError(f"expected a JSON object, got {type(document).__name__}")
    call = scheduler_pb2.Call()
    try:
        json_format.ParseDict(document, call)
    except json_format.ParseError as error:
        if "has no field named" not in str(error):
            raise CallJsonError(str(error)) from None
        # A field this master does not know: ignored, as Mesos ignores it. (Parsing leniently
        # from the start would also ignore enum values it does not know, silently: a typo in
        # "type" would read as no type at all.)
        call.Clear()
        try:
            json_format.ParseDict(document, call, ignore_unknown_fields=True)
        except json_format.ParseError as again:
            raise CallJsonError(str(again)) from None
    return call
