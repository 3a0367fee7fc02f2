"""A framework given an address where no master answers says so, and gives up in time.

Real gRPC against a port nothing listens on: every failed attempt is logged at WARNING naming
the address (the first one included), and once ``connect_timeout_seconds`` would pass the
scheduler's ``error()`` hears "cannot reach the master at X: ..." and the driver aborts; the
asyncio client ends with the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading

import pytest

from framework_sdk import (
    ClientConfig,
    Scheduler,
    SchedulerClient,
    SchedulerDriver,
    Status,
    SubscriptionError,
    messages,
)


@pytest.fixture
def dead_address() -> str:
    """host:port of a port that refuses connections (bound once, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


class RecordsErrors(Scheduler):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.seen = threading.Event()

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.errors.append(message)
        self.seen.set()


def test_the_driver_warns_then_reports_through_error(
    dead_address: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="framework_sdk")
    scheduler = RecordsErrors()
    config = ClientConfig(connect_timeout_seconds=2.0, backoff_max_seconds=0.5)
    driver = SchedulerDriver(
        scheduler, messages.framework_info("lost"), dead_address, config=config
    )
    assert driver.run() is Status.DRIVER_ABORTED
    assert len(scheduler.errors) == 1
    (message,) = scheduler.errors
    assert message.startswith(f"cannot reach the master at {dead_address}: ")
    assert "UNAVAILABLE" in message
    assert "connect timeout 2s" in message
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "no WARNING before giving up"
    assert f"cannot reach the master at {dead_address}" in warnings[0].getMessage()


def test_the_asyncio_client_ends_with_the_reason(dead_address: str) -> None:
    async def connect() -> None:
        config = ClientConfig(connect_timeout_seconds=1.0, backoff_max_seconds=0.3)
        async with SchedulerClient(dead_address, messages.framework_info("lost"), config=config):
            pass

    with pytest.raises(SubscriptionError, match=f"cannot reach the master at {dead_address}"):
        asyncio.run(connect())


class NoLeader:
    """A detector that never names a master (a ZooKeeper path no master has joined)."""

    async def detect(self) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "NoLeader()"


def test_no_leader_detected_within_the_timeout_ends_the_client() -> None:
    async def connect() -> None:
        config = ClientConfig(connect_timeout_seconds=0.5)
        async with SchedulerClient(NoLeader(), messages.framework_info("lost"), config=config):
            pass

    expected = "cannot reach the master at NoLeader[(][)]: no master is known to lead"
    with pytest.raises(SubscriptionError, match=expected):
        asyncio.run(connect())


def test_connect_timeout_may_be_infinite_but_not_zero() -> None:
    assert ClientConfig(connect_timeout_seconds=math.inf).connect_timeout_seconds == math.inf
    with pytest.raises(ValueError, match="connect_timeout_seconds"):
        ClientConfig(connect_timeout_seconds=0)
    with pytest.raises(ValueError, match="call_timeout_seconds"):  # Only this one may be.
        ClientConfig(call_timeout_seconds=math.inf)
    env = {"EMPORION_SDK_CONNECT_TIMEOUT_SECONDS": "inf"}
    assert ClientConfig.from_env(env).connect_timeout_seconds == math.inf
    assert ClientConfig.from_env({"EMPORION_SDK_CONNECT_TIMEOUT_SECONDS": "5"}) == ClientConfig(
        connect_timeout_seconds=5.0
    )
