"""Reading an operator call's JSON: typed values out, or a 400 naming the field.

Calls are read by hand rather than through ``json_format`` into protobuf (Emporion has no
``master.proto``): each reader takes the object, the key and the dotted path of the field for
the message (``get_tasks.limit: must be an integer between 0 and 1000, got -1``). Unknown keys
are refused, so that a misspelt filter is an error instead of a silently unfiltered answer.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from master.core.errors import shown
from master.core.operator_views import Page

__all__ = [
    "MAX_LIMIT",
    "OperatorCallError",
    "bad",
    "boolean",
    "check_keys",
    "id_value",
    "integer",
    "number",
    "obj",
    "page",
    "text",
]

MAX_LIMIT = 1000
"""The largest page a paged call returns."""

DEFAULT_LIMIT = 100
"""The page size of a paged call that sends paging without a ``limit``."""

JSON = dict[str, Any]


class OperatorCallError(Exception):
    """OperatorCallError refuses an operator call: ``status`` is the HTTP status to answer
    (400 bad call, 404 unknown id, 409 refused steering), ``message`` says what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> OperatorCallError:
    """A 400."""
    return OperatorCallError(400, message)


def obj(value: object, where: str) -> JSON:
    """``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise bad(f"{where}: must be an object, got {shown(value)}")
    return value


def check_keys(value: Mapping[str, object], allowed: Collection[str], where: str) -> None:
    """Refuse keys of ``value`` outside ``allowed``."""
    for key in value:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise bad(f"{where}: unknown field {shown(key)} (known: {known})")


def text(value: Mapping[str, object], key: str, where: str) -> str | None:
    """An optional string field."""
    item = value.get(key)
    if item is None:
        return None
    if not isinstance(item, str):
        raise bad(f"{where}.{key}: must be a string, got {shown(item)}")
    return item


def id_value(value: Mapping[str, object], key: str, where: str) -> str | None:
    """An optional id: ``{"value": "..."}`` as Mesos writes ids, or a plain string."""
    item = value.get(key)
    if item is None:
        return None
    if isinstance(item, dict):
        check_keys(item, ("value",), f"{where}.{key}")
        inner = item.get("value")
        if isinstance(inner, str):
            return inner
        raise bad(f"{where}.{key}.value: must be a string, got {shown(inner)}")
    if isinstance(item, str):
        return item
    raise bad(f'{where}.{key}: must be {{"value": "<id>"}} or a string, got {shown(item)}')


def number(value: Mapping[str, object], key: str, where: str) -> float | None:
    """An optional finite number."""
    item = value.get(key)
    if item is None:
        return None
    if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
        raise bad(f"{where}.{key}: must be a finite number, got {shown(item)}")
    return float(item)


def boolean(value: Mapping[str, object], key: str, where: str, default: bool) -> bool:
    """An optional boolean."""
    item = value.get(key, default)
    if not isinstance(item, bool):
        raise bad(f"{where}.{key}: must be true or false, got {shown(item)}")
    return item


def integer(value: Mapping[str, object], key: str, where: str, low: int, high: int) -> int | None:
    """An optional integer between ``low`` and ``high``."""
    item = value.get(key)
    if item is None:
        return None
    if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
        raise bad(f"{where}.{key}: must be an integer between {low} and {high}, got {shown(item)}")
    return item


PAGE_KEYS = ("limit", "offset", "order_by", "order")
"""The paging fields every paged call takes."""


def page(value: Mapping[str, object] | None, where: str, order_by: Collection[str]) -> Page:
    """The paging of a call: unpaged without a payload (Mesos's behaviour), else at most
    :data:`MAX_LIMIT` items (:data:`DEFAULT_LIMIT` when ``limit`` is left out)."""
    if value is None:
        return Page()
    limit = integer(value, "limit", where, 0, MAX_LIMIT)
    offset = integer(value, "offset", where, 0, 2**62) or 0
    key = text(value, "order_by", where) or ""
    if key and key not in order_by:
        raise bad(
            f"{where}.order_by: must be one of {', '.join(sorted(order_by))}, got {shown(key)}"
        )
    order = text(value, "order", where) or "asc"
    if order not in ("asc", "desc"):
        raise bad(f"{where}.order: must be 'asc' or 'desc', got {shown(order)}")
    return Page(DEFAULT_LIMIT if limit is None else limit, offset, key, descending=order == "desc")
