"""The agent's master link cuts a grown reregistration backoff short when the leader changes.

A real gRPC master (the fake AgentGateway, on port 0) and an in-memory following detector that
the test moves. No wall-clock assertions: a grown backoff is a sleep that never ends by itself
(the link's ``sleep`` seam), so only news of the leader can end it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from agent.core import RegistrationBackoff
from agent.runtime.master_link import LeaderFollower, MasterLink, Session
from protos.v1 import agent_internal_pb2 as ai
from tests.integration.agent.fake_master import FakeMaster
from tests.leader_fakes import FollowingDetector, Sleeps

GROWN = 0.5
"""Delays from this long on are sleeps that never end (see :class:`Sleeps`)."""

WAIT = 60.0  # Guards each test against hanging; reaching it fails the test.


class Link:
    """A MasterLink with recorded sessions, failing at once on a dead master."""

    def __init__(self, detector: FollowingDetector, sleeps: Sleeps) -> None:
        self.sessions: list[Session] = []
        self.accepted = asyncio.Event()
        # Jitter fixed near the top of the window: the delays double until one is "grown".
        backoff = RegistrationBackoff(factor=0.01, maximum=3600.0, random=lambda: 0.9)
        self.link = MasterLink(
            detector,
            hello=self._hello,
            on_session=self._on_session,
            on_message=lambda message: None,
            on_lost=lambda: None,
            backoff=backoff,
            sleep=sleeps,
        )

    @staticmethod
    def _hello() -> ai.AgentMessage:
        message = ai.AgentMessage()
        message.register_agent.agent_info.hostname = "follower"
        return message

    def _on_session(self, session: Session) -> None:
        self.sessions.append(session)
        self.accepted.set()


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    master = FakeMaster(batched=True)
    try:
        yield master
    finally:
        master.stop()


def _dead_address() -> str:
    """An address nothing listens on (a master that died)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _run(body: Coroutine[Any, Any, None]) -> None:
    """Run a test body, failing (not hanging) if it gets stuck."""

    async def guarded() -> None:
        async with asyncio.timeout(WAIT):
            await body

    asyncio.run(guarded())


def test_the_fake_detector_follows_the_protocol() -> None:
    assert isinstance(FollowingDetector("a:1"), LeaderFollower)


def test_a_grown_backoff_ends_when_another_master_leads(master: FakeMaster) -> None:
    async def body() -> None:
        dead = _dead_address()
        detector = FollowingDetector(dead)
        sleeps = Sleeps()
        link = Link(detector, sleeps)
        link.link.start()
        try:
            await sleeps.blocked.wait()  # A grown backoff, which would never end by itself.
            assert len(sleeps.delays) > 1  # Attempts failed, the backoff grew.
            assert link.sessions == []
            detector.set(master.address)
            await link.accepted.wait()
            assert sleeps.cut_short == 1
            # After the cut: one fresh delay from a reset backoff, [0, factor).
            fresh = sleeps.delays[-1]
            assert 0 <= fresh < 0.01
            assert link.link.sessions == 1
            assert link.sessions[0].reply.HasField("agent_registered")
        finally:
            await link.link.stop()

    _run(body())
    assert len(master.sessions) == 1


def test_no_known_leader_waits_for_one_and_the_same_one_keeps_its_backoff(
    master: FakeMaster,
) -> None:
    async def body() -> None:
        dead = _dead_address()
        detector = FollowingDetector(dead)
        sleeps = Sleeps()
        link = Link(detector, sleeps)
        link.link.start()
        try:
            await sleeps.blocked.wait()
            slept = len(sleeps.delays)
            # Nobody leads: the link waits for an election, not in a loop of attempts.
            detector.set(None)
            await detector.waiting.wait()
            assert len(sleeps.delays) == slept
            assert sleeps.cut_short == 0
            # The failed master is elected again: no news, the grown backoff stands.
            detector.watch_began.clear()
            detector.set(dead)
            await detector.watch_began.wait()
            assert detector.watching[-1] == dead
            assert len(sleeps.delays) == slept
            assert sleeps.cut_short == 0
            # Another master: the backoff ends.
            detector.set(master.address)
            await link.accepted.wait()
            assert sleeps.cut_short == 1
            assert len(sleeps.delays) == slept + 1
            assert sleeps.delays[-1] < 0.01
        finally:
            await link.link.stop()

    _run(body())
    assert len(master.sessions) == 1


def test_the_delay_after_leaving_a_moved_leader_is_waited_out_whole(
    master: FakeMaster,
) -> None:
    second = FakeMaster(batched=True)

    async def body() -> None:
        detector = FollowingDetector(master.address)
        sleeps = Sleeps()
        link = Link(detector, sleeps)
        link.link.start()
        try:
            await link.accepted.wait()
            link.accepted.clear()
            slept = len(sleeps.delays)
            detector.set(second.address)
            await link.accepted.wait()
            # One short jittered delay before the new leader, not itself cut short (for
            # the moved leader is no news to it).
            assert len(sleeps.delays) == slept + 1
            assert sleeps.delays[-1] < 0.01
            assert link.link.sessions == 2
        finally:
            await link.link.stop()

    try:
        _run(body())
    finally:
        second.stop()
    assert len(second.sessions) == 1
