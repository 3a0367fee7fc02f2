"""ExecutorConfig: what an executor learns from the environment the agent starts it with.

The agent launches a custom executor with Mesos's variables; :meth:`ExecutorConfig.from_env`
reads and checks them once, at the edge, and every mistake raises
:class:`ExecutorEnvironmentError` naming the variable:

==========================================  ======================================  ==========
variable                                    meaning                                 default
==========================================  ======================================  ==========
``EMPORION_AGENT_ENDPOINT``                 host:port of the agent's executor API   see below
``MESOS_AGENT_ENDPOINT``                    (gRPC); else ``MESOS_AGENT_ENDPOINT``   required
``MESOS_FRAMEWORK_ID``                      the framework's id                      required
``MESOS_EXECUTOR_ID``                       this executor's id                      required
``MESOS_SANDBOX``                           the sandbox directory                   cwd
``MESOS_CHECKPOINT``                        ``1``: survive an agent restart         ``0``
``MESOS_RECOVERY_TIMEOUT``                  how long to wait for a restarted agent  ``15mins``
``MESOS_SUBSCRIPTION_BACKOFF_MAX``          longest wait between SUBSCRIBE retries  ``2secs``
``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``    from SHUTDOWN until the agent kills us  ``5secs``
==========================================  ======================================  ==========

An Emporion agent sets ``EMPORION_AGENT_ENDPOINT`` to its gRPC executor API and
``MESOS_AGENT_ENDPOINT`` to its HTTP address, as Mesos does, where executors written for Mesos's
HTTP API (pymesos) find ``/api/v1/executor``; an executor started by hand or by a test may set
``MESOS_AGENT_ENDPOINT`` alone to a gRPC executor API.

Durations are Mesos duration strings: a number and a unit (``ns us ms secs mins hrs days
weeks``; ``s``, ``m``, ``h`` and a bare number of seconds are accepted too).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from framework_sdk.errors import SchedulerSDKError
from protos.durations import parse_duration

__all__ = [
    "DEFAULT_RECOVERY_TIMEOUT",
    "DEFAULT_SHUTDOWN_GRACE_PERIOD",
    "DEFAULT_SUBSCRIPTION_BACKOFF_MAX",
    "ExecutorConfig",
    "ExecutorEnvironmentError",
    "parse_duration",
]

# Mesos's defaults (src/slave/constants.hpp): RECOVERY_TIMEOUT,
# DEFAULT_SUBSCRIPTION_BACKOFF_MAX, DEFAULT_EXECUTOR_SHUTDOWN_GRACE_PERIOD.
DEFAULT_RECOVERY_TIMEOUT = 15 * 60.0
DEFAULT_SUBSCRIPTION_BACKOFF_MAX = 2.0
DEFAULT_SHUTDOWN_GRACE_PERIOD = 5.0

_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def _is_host_port(text: str) -> bool:
    match = _HOST_PORT.fullmatch(text)
    return match is not None and 0 < int(match.group(2)) < 65536


class ExecutorEnvironmentError(SchedulerSDKError, ValueError):
    """ExecutorEnvironmentError: a ``MESOS_*`` variable is missing or invalid.

    ``variable`` is its name; the message says what was expected. An executor started by hand
    (not by an agent) gets this for ``MESOS_AGENT_ENDPOINT`` first.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """ExecutorConfig: where the agent is, who this executor is, and its timing knobs.

    Usually built by :meth:`from_env`. Durations are seconds. ``subscribe_timeout_seconds``
    (waiting for SUBSCRIBED on an open stream) and ``call_timeout_seconds`` (each UPDATE or
    MESSAGE call) are the SDK's own and come from no variable.
    """

    agent_endpoint: str
    framework_id: str
    executor_id: str
    sandbox: str = "."
    checkpoint: bool = False
    recovery_timeout_seconds: float = DEFAULT_RECOVERY_TIMEOUT
    subscription_backoff_max_seconds: float = DEFAULT_SUBSCRIPTION_BACKOFF_MAX
    shutdown_grace_period_seconds: float = DEFAULT_SHUTDOWN_GRACE_PERIOD
    subscribe_timeout_seconds: float = 30.0
    call_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not _is_host_port(self.agent_endpoint):
            raise ValueError(
                f"ExecutorConfig.agent_endpoint must be host:port, not {self.agent_endpoint!r}"
            )
        for name in ("framework_id", "executor_id"):
            if not getattr(self, name):
                raise ValueError(f"ExecutorConfig.{name} must not be empty")
        for name, zero_ok in (
            ("recovery_timeout_seconds", False),
            ("subscription_backoff_max_seconds", True),
            ("shutdown_grace_period_seconds", False),
            ("subscribe_timeout_seconds", False),
            ("call_timeout_seconds", False),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"ExecutorConfig.{name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
                bound = ">= 0" if zero_ok else "positive"
                raise ValueError(f"ExecutorConfig.{name} must be finite and {bound}: {value}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExecutorConfig:
        """The config from ``environ`` (default ``os.environ``), as the agent set it.

        Raises :class:`ExecutorEnvironmentError` naming the first missing or invalid variable.
        """
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ExecutorEnvironmentError(
                    name, "not set; is this executor running under an Emporion or Mesos agent?"
                )
            return value

        variable = "EMPORION_AGENT_ENDPOINT"
        if not env.get(variable, "").strip():
            variable = "MESOS_AGENT_ENDPOINT"
        endpoint = required(variable)
        if not _is_host_port(endpoint):
            raise ExecutorEnvironmentError(
                variable, f"expected host:port (1-65535), got {endpoint!r}"
            )
        framework_id = required("MESOS_FRAMEWORK_ID")
        executor_id = required("MESOS_EXECUTOR_ID")
        checkpoint_text = env.get("MESOS_CHECKPOINT", "0").strip()
        if checkpoint_text not in ("0", "1"):
            raise ExecutorEnvironmentError(
                "MESOS_CHECKPOINT", f"expected 1 or 0, got {checkpoint_text!r}"
            )

        def duration(name: str, default: float, allow_zero: bool = False) -> float:
            text = env.get(name)
            if text is None or not text.strip():
                return default
            try:
                value = parse_duration(text)
            except ValueError as error:
                raise ExecutorEnvironmentError(name, str(error)) from None
            if value < 0 or (value == 0 and not allow_zero):
                raise ExecutorEnvironmentError(name, f"must be positive, got {text!r}")
            return value

        return cls(
            agent_endpoint=endpoint,
            framework_id=framework_id,
            executor_id=executor_id,
            sandbox=env.get("MESOS_SANDBOX", "").strip() or os.getcwd(),
            checkpoint=checkpoint_text == "1",
            recovery_timeout_seconds=duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT),
            subscription_backoff_max_seconds=duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX", DEFAULT_SUBSCRIPTION_BACKOFF_MAX, allow_zero=True
            ),
            shutdown_grace_period_seconds=duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", DEFAULT_SHUTDOWN_GRACE_PERIOD
            ),
        )
