"""Mesos's v1 HTTP APIs' conventions, shared by the scheduler API (master) and the executor API
(agent): media types, RecordIO framing, and protobuf messages in Mesos's JSON.

* Bodies are ``application/json`` or ``application/x-protobuf`` (:func:`media_type` compares
  without parameters and case); a SUBSCRIBE stream is written in the encoding its ``Accept``
  header allows, JSON first when both are (:func:`stream_media_type`, Mesos's order).
* Each event of a stream is one RecordIO record (:func:`record`): the length of the encoded
  event in decimal ASCII, a newline, the event's bytes (Mesos's ``src/common/recordio.hpp``).
* Mesos's JSON (stout's ``JSON::protobuf``) is not protobuf's canonical JSON mapping: 64-bit
  integers are JSON numbers, not strings (``"begin": 31000``, where ``json_format`` writes
  ``"31000"``), fields keep their ``.proto`` names, enums are written by name, ``bytes`` in
  base64, and only fields that are set appear. pymesos does arithmetic on port ranges and
  compares ``status["state"]`` with ``"TASK_RUNNING"``, so events go out in exactly that form.
  :func:`message_json` builds it from the descriptors, with a plan cached per message type
  (several times cheaper than ``json_format.MessageToDict`` plus a pass to turn strings back
  into numbers).
* Reading (:func:`message_from_json`) is lenient where Mesos is: numbers or strings for 64-bit
  integers, enum names (or numbers), base64 for bytes, and fields Emporion does not know are
  ignored, as Mesos ignores them. An enum value it does not know is an error naming the field,
  as in Mesos.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

__all__ = [
    "APPLICATION_JSON",
    "APPLICATION_PROTOBUF",
    "BodyError",
    "JsonMessageError",
    "decode_body",
    "accepts",
    "media_type",
    "message_from_json",
    "message_json",
    "record",
    "stream_media_type",
]

APPLICATION_JSON = "application/json"
APPLICATION_PROTOBUF = "application/x-protobuf"

_M = TypeVar("_M", bound=Message)

JSON = dict[str, Any]

_Convert = Callable[[Any], Any]
_plans: dict[str, dict[str, tuple[str, bool, _Convert | None]]] = {}
"""Per message type (full name): field name -> (JSON key, repeated, converter or None)."""

_T = FieldDescriptor


class JsonMessageError(ValueError):
    """JsonMessageError: a JSON document that is not the message expected; the message names
    the field (``json_format``'s words)."""


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


def _map(field: FieldDescriptor) -> _Convert:
    """A map field (``map<K, V>``): a JSON object, keys as strings, values converted as V's."""
    entry = field.message_type
    assert entry is not None
    convert = _converter(entry.fields_by_name["value"])

    def as_object(value: Any) -> JSON:
        if convert is None:
            return {str(key): item for key, item in value.items()}
        return {str(key): convert(item) for key, item in value.items()}

    return as_object


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _plan(descriptor: Any) -> dict[str, tuple[str, bool, _Convert | None]]:
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = {
            field.name: (
                (field.name, False, _map(field))
                if _is_map(field)
                else (field.name, field.is_repeated, _converter(field))
            )
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


def message_from_json(document: object, message: _M) -> _M:
    """Fill ``message`` from a parsed JSON document (see the module docstring) and return it.
    Raises JsonMessageError naming the bad field."""
    if not isinstance(document, dict):
        raise JsonMessageError(f"expected a JSON object, got {type(document).__name__}")
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as error:
        if "has no field named" not in str(error):
            raise JsonMessageError(str(error)) from None
        # A field Emporion does not know: ignored, as Mesos ignores it. (Parsing leniently from
        # the start would also ignore enum values it does not know, silently: a typo in "type"
        # would read as no type at all.)
        message.Clear()
        try:
            json_format.ParseDict(document, message, ignore_unknown_fields=True)
        except json_format.ParseError as again:
            raise JsonMessageError(str(again)) from None
    return message


class BodyError(ValueError):
    """BodyError: a request body that is not the Call expected; ``status`` is Mesos's answer
    (400, or 415 for a Content-Type that is neither JSON nor protobuf), the message says why
    in Mesos's words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_body(content_type: str | None, body: bytes, message: _M) -> _M:
    """Fill ``message`` (a scheduler or executor Call) from a request body as its
    ``Content-Type`` says, and return it; BodyError as Mesos answers a bad one."""
    if content_type is None:
        raise BodyError(400, "Expecting 'Content-Type' to be present")
    media = media_type(content_type)
    if media == APPLICATION_PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, ValueError) as error:
            raise BodyError(400, f"Failed to parse body into Call protobuf: {error}") from None
        return message
    if media == APPLICATION_JSON:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise BodyError(400, f"Failed to parse body into JSON: {error}") from None
        try:
            return message_from_json(document, message)
        except (JsonMessageError, RecursionError) as error:
            raise BodyError(400, f"Failed to convert JSON into Call protobuf: {error}") from None
    raise BodyError(
        415, f"Expecting 'Content-Type' of {APPLICATION_JSON} or {APPLICATION_PROTOBUF}"
    )


def media_type(value: str) -> str:
    """A Content-Type or Accept item without its parameters, lower case."""
    return value.split(";", 1)[0].strip().lower()


def accepts(accept: str, media: str) -> bool:
    """Whether the ``Accept`` header ``accept`` allows ``media`` (with a quality above 0)."""
    kind = media.split("/", 1)[0]
    best: tuple[int, float] | None = None  # (specificity, quality) of the most specific match
    for item in accept.split(","):
        parts = item.split(";")
        pattern = parts[0].strip().lower()
        quality = 1.0
        for parameter in parts[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if pattern == media:
            specificity = 2
        elif pattern == f"{kind}/*":
            specificity = 1
        elif pattern == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, quality)
    return best is not None and best[1] > 0


def stream_media_type(accept: str | None) -> str | None:
    """The encoding of a SUBSCRIBE stream for the ``Accept`` header ``accept`` (none: JSON);
    None when it allows neither JSON nor protobuf."""
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    for media in (APPLICATION_JSON, APPLICATION_PROTOBUF):
        if accepts(accept, media):
            return media
    return None


def record(data: bytes) -> bytes:
    """One RecordIO record holding ``data``."""
    return b"%d\n%s" % (len(data), data)
