"""The scheduler client keeps one channel per master address across its reconnect attempts.

Real gRPC servers (scripted masters on port 0). Every channel the client opens is recorded (a
wrapper around ``grpc.aio.insecure_channel``) with whether it was closed. No wall-clock
assertions: the client's ``sleep`` seam counts attempts and holds the client still on request.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

from framework_sdk import ClientConfig, SchedulerClient, events, messages
from framework_sdk._stream_client import RECONNECT_OPTIONS
from protos.limits import GRPC_MESSAGE_OPTIONS
from tests.leader_fakes import FollowingDetector
from tests.unit.sdk.scripted_master import ScriptedMaster
from tests.unit.sdk.scripted_service import run

CONFIG = ClientConfig(
    backoff_initial_seconds=0.001,
    backoff_max_seconds=0.002,
    subscribe_timeout_seconds=20.0,
    call_timeout_seconds=20.0,
)
RETRIES = 30  # Failed attempts to a dead master before the test looks at the channels.


class Opened:
    """A recorded channel: its address, options, and whether ``close`` was called."""

    def __init__(self, address: str, options: Any) -> None:
        self.address = address
        self.options = tuple(options or ())
        self.closed = False


class Channels:
    """Records every channel opened through ``grpc.aio.insecure_channel``."""

    def __init__(self) -> None:
        self.opened: list[Opened] = []

    def open(self, address: str, options: Any = None, *args: Any, **kwargs: Any) -> Any:
        channel = _real_insecure_channel(address, options, *args, **kwargs)
        record = Opened(address, options)
        self.opened.append(record)
        close = channel.close

        async def recording_close(grace: float | None = None) -> None:
            record.closed = True
            await close(grace)

        channel.close = recording_close  # type: ignore[method-assign]
        return channel

    def live(self) -> list[str]:
        """The addresses of the channels not closed."""
        return [record.address for record in self.opened if not record.closed]


_real_insecure_channel = grpc.aio.insecure_channel


class Attempts:
    """The client's sleep seam: counts the pauses between attempts; pause number ``hold_at``
    lasts until ``release`` is set (or until cancelled, by news of the leader)."""

    def __init__(self, hold_at: int | None) -> None:
        self.pauses = 0
        self.hold_at = hold_at
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.pauses += 1
        if self.pauses == self.hold_at:
            self.held.set()
            await self.release.wait()
            return
        await asyncio.sleep(delay)


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Channels:
    recorder = Channels()
    monkeypatch.setattr(grpc.aio, "insecure_channel", recorder.open)
    return recorder


@pytest.fixture
def master() -> Iterator[ScriptedMaster]:
    with ScriptedMaster() as master:
        yield master


@pytest.fixture
def framework_info() -> messages.FrameworkInfo:
    return messages.framework_info("channels", user="tester")


def _dead_address() -> str:
    """An address nothing listens on (a master that died)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_retries_to_a_dead_master_share_one_channel_and_close_closes_it(
    channels: Channels, framework_info: messages.FrameworkInfo
) -> None:
    dead = _dead_address()

    async def body() -> None:
        attempts = Attempts(hold_at=RETRIES)
        client = SchedulerClient(dead, framework_info, config=CONFIG, sleep=attempts)
        await client.start()
        try:
            await attempts.held.wait()
            assert client.session.attempt >= RETRIES
            assert not client.subscribed
            assert client.channels_opened == 1
            assert channels.live() == [dead]
            assert channels.opened[0].options == (*GRPC_MESSAGE_OPTIONS, *RECONNECT_OPTIONS)
        finally:
            await client.close()
        assert channels.live() == []

    run(body)
    assert len(channels.opened) == 1


def test_a_master_back_at_the_same_address_is_reached_over_the_same_channel(
    channels: Channels, master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        attempts = Attempts(hold_at=None)  # Held later.
        async with SchedulerClient(
            master.address, framework_info, config=CONFIG, sleep=attempts
        ) as client:
            assert isinstance(await anext(client.events()), events.Subscribed)
            # The master goes away: the client retries against nobody, several times.
            attempts.hold_at = attempts.pauses + RETRIES
            await asyncio.to_thread(master.stop)
            lost = await anext(client.events())
            assert isinstance(lost, events.Disconnected)
            await attempts.held.wait()
            # It comes back at the same address: the same channel reconnects by itself.
            await asyncio.to_thread(master.start)
            attempts.release.set()
            back = await anext(client.events())
            assert isinstance(back, events.Subscribed)
            assert back.resubscribed
            assert client.channels_opened == 1
            assert channels.live() == [master.address]
        assert channels.live() == []

    run(body)
    assert len(master.subscribe_calls) >= 2


def test_moving_to_another_master_closes_the_channel_to_the_old_one(
    channels: Channels, master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    dead = _dead_address()

    async def body() -> None:
        detector = FollowingDetector(dead)
        attempts = Attempts(hold_at=RETRIES)
        client = SchedulerClient(detector, framework_info, config=CONFIG, sleep=attempts)
        await client.start()
        try:
            await attempts.held.wait()
            assert channels.live() == [dead]
            attempts.hold_at = None  # The delay before the new leader is slept.
            detector.set(master.address)  # Ends the held pause: news of the leader.
            subscribed = await anext(client.events())
            assert isinstance(subscribed, events.Subscribed)
            assert client.channels_opened == 2
            assert channels.live() == [master.address]
        finally:
            await client.close()
        assert channels.live() == []

    run(body)
    assert [record.address for record in channels.opened] == [dead, master.address]
