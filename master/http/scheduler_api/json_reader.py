"""read_call, read_message: Mesos's JSON read as ``json_format`` reads it, several times faster.

``json_format.ParseDict`` is generic and slow: reading the Calls of
``bench.launch_throughput --api http`` (an ACKNOWLEDGE per status update, ACCEPTs of hundreds of
tasks) took more of the master's CPU than the state machine. This reader covers the JSON that
schedulers send in practice, with one reader per message type (field name -> its setter), and
gives up, returning None, on anything else; the caller then reads the document with
``json_format`` (:func:`protos.mesos_http.message_from_json`), which either reads it the same or
refuses it with its precise words. So it never accepts what that refuses, nor reads anything
differently: every field must be named as in the ``.proto``; strings ASCII (``json_format``
checks others for unpaired surrogates); booleans ``true``/``false``; integers JSON integers in
range; doubles finite numbers; enums known names; ``bytes`` base64 as ``json_format`` decodes it
(URL-safe or not, padding optional). It gives up on ``null``, numbers or strings where the other
is expected, ``float`` fields, maps, oneofs, well-known types and unknown fields (ignored by
Mesos, which the fallback does).
"""

from __future__ import annotations

import binascii
import json
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from protos.v1 import scheduler_pb2

__all__ = ["read_call", "read_message"]

_M = TypeVar("_M", bound=Message)
_T = FieldDescriptor


class _GiveUpError(Exception):
    """The document is not one this reader covers: ``json_format`` reads it instead."""


def _string(value: Any) -> str:
    if type(value) is not str or not value.isascii():
        raise _GiveUpError
    return value


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _GiveUpError
    return value


def _integer(value: Any) -> int:
    if type(value) is not int:  # Not bool (a subclass), not a float, not a quoted number.
        raise _GiveUpError
    return value


def _double(value: Any) -> float:
    if type(value) is float:
        if not math.isfinite(value):  # json.loads reads NaN and Infinity; json_format refuses.
            raise _GiveUpError
        return value
    if type(value) is int:
        return float(value)
    raise _GiveUpError


_URL_SAFE = bytes.maketrans(b"-_", b"+/")


def _bytes(value: Any) -> bytes:
    if type(value) is not str or not value.isascii():
        raise _GiveUpError
    raw = value.encode()
    try:  # As json_format decodes bytes (base64.urlsafe_b64decode, padding added), unwrapped.
        return binascii.a2b_base64((raw + b"=" * (4 - len(raw) % 4)).translate(_URL_SAFE))
    except (binascii.Error, ValueError):
        raise _GiveUpError from None


def _enum(field: FieldDescriptor) -> Callable[[Any], int]:
    enum_type = field.enum_type
    assert enum_type is not None
    numbers = {name: value.number for name, value in enum_type.values_by_name.items()}

    def number(value: Any) -> int:
        if type(value) is not str:
            raise _GiveUpError
        found = numbers.get(value)
        if found is None:
            raise _GiveUpError
        return found

    return number


_SCALARS: dict[int, Callable[[Any], Any]] = {
    _T.TYPE_STRING: _string,
    _T.TYPE_BOOL: _boolean,
    _T.TYPE_DOUBLE: _double,
    _T.TYPE_BYTES: _bytes,
    **dict.fromkeys(
        (
            _T.TYPE_INT32,
            _T.TYPE_INT64,
            _T.TYPE_UINT32,
            _T.TYPE_UINT64,
            _T.TYPE_SINT32,
            _T.TYPE_SINT64,
            _T.TYPE_FIXED32,
            _T.TYPE_FIXED64,
            _T.TYPE_SFIXED32,
            _T.TYPE_SFIXED64,
        ),
        _integer,
    ),
}

# One reader per message type: a function that fills a message from its JSON object, with one
# setter per field it covers (a field it does not cover has no setter, so naming it gives up).
# Readers are built once per type from its descriptor; the per-field work left is a dict lookup,
# a type check and the protobuf assignment itself.
_Reader = Callable[[Any, Message], None]
_Setter = Callable[[Message, Any], None]
_readers: dict[str, _Reader] = {}
_by_class: dict[type, _Reader] = {}


def _reader(descriptor: Any) -> _Reader:
    """The reader of messages of type ``descriptor`` (built at first use; a recursive type's
    reader is registered before its fields' setters are built, so they find it)."""
    found = _readers.get(descriptor.full_name)
    if found is not None:
        return found
    setters: dict[str, _Setter] = {}

    def read(document: Any, message: Message) -> None:
        if type(document) is not dict:
            raise _GiveUpError
        for name, value in document.items():
            setter = setters.get(name)
            if setter is None:
                raise _GiveUpError
            setter(message, value)

    _readers[descriptor.full_name] = read
    if not descriptor.full_name.startswith("google.protobuf."):
        for field in descriptor.fields:
            setter = _setter(field)
            if setter is not None:
                setters[field.name] = setter
    return read


def _setter(field: FieldDescriptor) -> _Setter | None:
    """How a field's JSON value is set on its message; None for a field not covered."""
    if field.containing_oneof is not None:
        return None
    name = field.name
    repeated = field.is_repeated
    if field.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
        sub = field.message_type
        assert sub is not None
        if sub.GetOptions().map_entry:
            return None
        return _messages(name, _reader(sub)) if repeated else _message(name, _reader(sub))
    convert: Callable[[Any], Any]
    if field.type == _T.TYPE_ENUM:
        convert = _enum(field)
    elif field.type in _SCALARS:
        convert = _SCALARS[field.type]
    else:
        return None
    if repeated:
        return _scalars(name, convert)
    if convert is _string:
        return _string_setter(name)
    return _scalar(name, convert)


def _message(name: str, read: _Reader) -> _Setter:
    def set_message(message: Message, value: Any) -> None:
        sub = getattr(message, name)
        read(value, sub)
        sub.SetInParent()  # An empty object still sets the field.

    return set_message


def _messages(name: str, read: _Reader) -> _Setter:
    def set_messages(message: Message, value: Any) -> None:
        if type(value) is not list:
            raise _GiveUpError
        target = getattr(message, name)
        for item in value:
            read(item, target.add())

    return set_messages


def _scalars(name: str, convert: Callable[[Any], Any]) -> _Setter:
    def set_scalars(message: Message, value: Any) -> None:
        if type(value) is not list:
            raise _GiveUpError
        getattr(message, name).extend([convert(item) for item in value])

    return set_scalars


def _string_setter(name: str) -> _Setter:
    def set_string(message: Message, value: Any) -> None:
        if type(value) is not str or not value.isascii():
            raise _GiveUpError
        setattr(message, name, value)

    return set_string


def _scalar(name: str, convert: Callable[[Any], Any]) -> _Setter:
    def set_scalar(message: Message, value: Any) -> None:
        setattr(message, name, convert(value))

    return set_scalar


def read_message(document: Any, message: _M) -> _M | None:
    """``message`` filled from the parsed JSON ``document`` as ``json_format`` would fill it,
    or None where this reader gives up (see the module docstring; ``message`` is then left
    partly filled: pass a fresh one, and a fresh one to the fallback)."""
    read = _by_class.get(type(message))
    if read is None:
        read = _by_class[type(message)] = _reader(message.DESCRIPTOR)
    try:
        read(document, message)
    except (_GiveUpError, ValueError, TypeError, OverflowError):  # An integer out of range.
        return None
    return message


_skip_space: Callable[[str, int], Any] = re.compile(r"[ \t\n\r]*").match
"""JSON's whitespace (``json.decoder.WHITESPACE``): always matches."""
_scan = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))
"""The scanner ``json.loads`` parses with (``JSONDecoder.scan_once``)."""


def read_call(body: bytes) -> scheduler_pb2.Call | None:
    """The Call of the JSON ``body``, read as ``json.loads`` then ``json_format`` read it, or
    None where this reader gives up (the caller then reads the body the generic way, which
    also refuses a bad one in its words).

    The text is parsed by ``json``'s own scanner, as ``json.loads`` parses it, without its
    detection of UTF-16 and UTF-32: a body that is not ASCII is given up (strings that are not
    ASCII are given up anyway, and a UTF-16 or UTF-32 body read as ASCII is never JSON, having
    NUL bytes outside strings).
    """
    try:
        text = body.decode("ascii")
        document, end = _scan(text, _skip_space(text, 0).end())
        if _skip_space(text, end).end() != len(text):
            return None  # json.loads: "Extra data".
        return read_message(document, scheduler_pb2.Call())
    except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):
        return None
