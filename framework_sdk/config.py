"""ClientConfig: the timing knobs of a scheduler client (reconnect backoff, heartbeats, timeouts).

Built once, at the edge: defaults, or :meth:`ClientConfig.from_env` reading ``EMPORION_SDK_*``
variables. The defaults follow Mesos's advice for schedulers: reconnect with exponential backoff
up to about 15 s, treat about 5 missed heartbeats as a dead connection, and give a request
about 75 s before calling it lost.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["ClientConfig"]

_ENV_PREFIX = "EMPORION_SDK_"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """ClientConfig holds the timing knobs of a scheduler client; all values are seconds or counts.

    * ``backoff_initial_seconds`` / ``backoff_max_seconds``: the reconnect delay doubles from the
      first to the second (jittered between half and all of it, so that many schedulers that
      lost the same master do not come back at the same instant).
    * ``heartbeat_misses``: the stream counts as dead after this many heartbeat intervals
      without any event.
    * ``subscribe_timeout_seconds``: how long to wait for SUBSCRIBED after opening a stream.
    * ``call_timeout_seconds``: deadline of each unary call.
    * ``connect_timeout_seconds``: how long a client that has never been subscribed keeps
      trying to reach a master before it gives up, telling the scheduler "cannot reach the
      master at X: ..." (``Scheduler.error``, then the driver aborts; the asyncio client ends
      with that reason). ``math.inf``: never. Once subscribed a client never gives up, as
      Mesos's driver: a master failover may take long, and the framework's tasks wait for it.
    """

    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 15.0
    heartbeat_misses: float = 5.0
    subscribe_timeout_seconds: float = 75.0
    call_timeout_seconds: float = 75.0
    connect_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"ClientConfig.{field.name} must be a number, not {value!r}")
            if field.name == "connect_timeout_seconds" and value == math.inf:
                continue  # Never give up.
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"ClientConfig.{field.name} must be positive and finite: {value}")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError(
                "ClientConfig.backoff_max_seconds must be >= backoff_initial_seconds"
                f" ({self.backoff_max_seconds} < {self.backoff_initial_seconds})"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientConfig:
        """The defaults, overridden by ``EMPORION_SDK_<FIELD>`` variables.

        For example ``EMPORION_SDK_BACKOFF_MAX_SECONDS=30``.
        Raises ValueError naming the variable when a value is not a positive number.
        """
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for field in fields(cls):
            name = _ENV_PREFIX + field.name.upper()
            if name in env:
                try:
                    values[field.name] = float(env[name])
                except ValueError:
                    raise ValueError(f"{name}={env[name]!r} is not a number") from None
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"invalid {_ENV_PREFIX}* setting: {error}") from None
