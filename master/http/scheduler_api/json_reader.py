"""read_message: Mesos's JSON of a message read as ``json_format`` reads it, several times faster.

``json_format.ParseDict`` is generic and slow: reading the Calls of
``bench.launch_throughput --api http`` (an ACKNOWLEDGE per status update, ACCEPTs of hundreds of
tasks) took more of the master's CPU than the state machine. This reader covers the JSON that
schedulers send in practice, with one plan per message type (field name -> how to set it), and
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

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["read_message"]

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


def _bytes(value: Any) -> bytes:
    if type(value) is not str or not value.isascii():
        raise _GiveUpError
    raw = value.encode()
    try:  # As json_format decodes bytes: URL-safe or not, padding added.
        return base64.urlsafe_b64decode(raw + b"=" * (4 - len(raw) % 4))
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

# Per field: (repeated, sub-message descriptor or None, scalar converter or None). A field this
# reader does not cover has no entry, so naming it gives up.
_Plan = dict[str, tuple[bool, Descriptor | None, Callable[[Any], Any] | None]]
_plans: dict[str, _Plan] = {}


def _plan(descriptor: Any) -> _Plan:
    plan = _plans.get(descriptor.full_name)
    if plan is not None:
        return plan
    plan = {}
    if not descriptor.full_name.startswith("google.protobuf."):
        for field in descriptor.fields:
            if field.containing_oneof is not None:
                continue
            repeated = field.is_repeated
            if field.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
                sub = field.message_type
                assert sub is not None
                if sub.GetOptions().map_entry:
                    continue
                plan[field.name] = (repeated, sub, None)
            elif field.type == _T.TYPE_ENUM:
                plan[field.name] = (repeated, None, _enum(field))
            elif field.type in _SCALARS:
                plan[field.name] = (repeated, None, _SCALARS[field.type])
    _plans[descriptor.full_name] = plan
    return plan


def _fill(document: Any, message: Message) -> None:
    if type(document) is not dict:
        raise _GiveUpError
    plan = _plan(message.DESCRIPTOR)
    for name, value in document.items():
        entry = plan.get(name)
        if entry is None:
            raise _GiveUpError
        repeated, sub, convert = entry
        if repeated:
            if type(value) is not list:
                raise _GiveUpError
            target = getattr(message, name)
            if sub is not None:
                for item in value:
                    _fill(item, target.add())
            else:
                assert convert is not None
                target.extend([convert(item) for item in value])
        elif sub is not None:
            _fill(value, getattr(message, name))
            getattr(message, name).SetInParent()  # An empty object still sets the field.
        else:
            assert convert is not None
            setattr(message, name, convert(value))


def read_message(document: Any, message: _M) -> _M | None:
    """``message`` filled from the parsed JSON ``document`` as ``json_format`` would fill it,
    or None where this reader gives up (see the module docstring; ``message`` is then left
    partly filled: pass a fresh one, and a fresh one to the fallback)."""
    try:
        _fill(document, message)
    except (_GiveUpError, ValueError, TypeError, OverflowError):  # An integer out of range.
        return None
    return message
