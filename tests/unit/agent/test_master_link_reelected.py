"""The agent's master link retries soon a master that refuses while ZooKeeper re-elects it.

Chaos ``zk_outage`` (30 s without ZooKeeper): the leader stepped down, refused the agent with
``UNAVAILABLE not the leading master; no leader is known``, and was elected again (same
candidacy, same address) within a second of ZooKeeper's return; the agent's detector never
changed, so the link waited out a backoff grown to ~50 s. Here a real gRPC master refuses
exactly that way until the test lets it lead, with an in-memory following detector naming it
throughout. No wall-clock assertions: a grown backoff is a sleep that never ends by itself (the
link's ``sleep`` seam), so the link gets through only if its backoff stays short.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import grpc
import pytest

from agent.core import RegistrationBackoff
from agent.runtime.master_link import MasterLink, Session
from protos.v1 import agent_internal_pb2 as ai
from tests.integration.agent.fake_master import FakeMaster
from tests.leader_fakes import FollowingDetector, Sleeps

WAIT = 60.0  # Guards the test against hanging; reaching it fails the test.
REFUSALS = 12  # Enough for a doubling backoff (factor 0.01 s) to grow past Sleeps' 0.5 s.


class ReelectedMaster(FakeMaster):
    """A master that refuses as not leading, knowing no leader, until ``lead`` is set."""

    def __init__(self) -> None:
        super().__init__(batched=True)
        self.lead = threading.Event()
        self.refused = 0
        self.refused_enough = threading.Event()

    def ConnectBatched(
        self, request_iterator: Iterator[ai.AgentMessages], context: grpc.ServicerContext
    ) -> Iterator[ai.MasterMessages]:
        if not self.lead.is_set():
            self.refused += 1
            if self.refused >= REFUSALS:
                self.refused_enough.set()
            context.abort(grpc.StatusCode.UNAVAILABLE, "not the leading master; no leader is known")
        yield from super().ConnectBatched(request_iterator, context)


@pytest.fixture
def master() -> Iterator[ReelectedMaster]:
    master = ReelectedMaster()
    try:
        yield master
    finally:
        master.stop()


def test_a_master_refusing_as_not_leading_is_asked_again_soon(master: ReelectedMaster) -> None:
    sessions: list[Session] = []

    async def body() -> None:
        accepted = asyncio.Event()
        sleeps = Sleeps()

        def on_session(session: Session) -> None:
            sessions.append(session)
            accepted.set()

        def hello() -> ai.AgentMessage:
            message = ai.AgentMessage()
            message.register_agent.agent_info.hostname = "reelected"
            return message

        link = MasterLink(
            FollowingDetector(master.address),
            hello=hello,
            on_session=on_session,
            on_message=lambda message: None,
            on_lost=lambda: None,
            # Jitter near the top of the window: a growing backoff passes 0.5 s in 6 attempts.
            backoff=RegistrationBackoff(factor=0.01, maximum=3600.0, random=lambda: 0.9),
            sleep=sleeps,
        )
        link.start()
        try:
            refused = asyncio.ensure_future(asyncio.to_thread(master.refused_enough.wait, WAIT))
            grown = asyncio.ensure_future(sleeps.blocked.wait())
            await asyncio.wait([refused, grown], return_when=asyncio.FIRST_COMPLETED)
            grown.cancel()
            assert not sleeps.blocked.is_set(), f"the backoff grew: {sleeps.delays}"
            await refused
            assert master.refused >= REFUSALS
            master.lead.set()  # Elected again, at the same address.
            await accepted.wait()
            assert not sleeps.blocked.is_set(), f"the backoff grew: {sleeps.delays}"
        finally:
            master.refused_enough.set()  # Frees the waiting thread when the test failed.
            await link.stop()

    async def guarded() -> None:
        async with asyncio.timeout(WAIT):
            await body()

    asyncio.run(guarded())
    assert sessions[0].reply.HasField("agent_registered")
