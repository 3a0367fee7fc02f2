"""Mesos-style durations (``"5secs"``, ``"100ms"``, ``"2mins"``, ``"7"``), shared by all.

Flags, ``EMPORION_*`` variables and the ``MESOS_*`` executor environment all carry durations in
this text form; the master, the agent and the SDK parse them with this one function.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_SECONDS_PER_UNIT = {
    "": 1.0,
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.)\s*([a-z]*)\s*")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``5s``, ``5secs``, ``1.5mins``, ``100ms`` or ``7``.

    Raises ValueError naming the text if it is not a non-negative finite number with a known unit.
    """
    match = _DURATION.fullmatch(text.lower())
    if match is None or match.group(2) not in _SECONDS_PER_UNIT:
        raise ValueError(
            f"invalid duration {text!r}: expected a number and a unit such as 5secs, 100ms, 2mins"
        )
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}: too large")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration in Mesos's text form (``5secs``, ``250ms``), e.g. for executors' environment."""
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}secs"
    return f"{round(seconds * 1000)}ms"
