"""The agent's master link notices a master back at the same address at once (issue 10).

A restarted standalone master used to see its agents again only 25-34 s after it was up: the
link's backoff, and gRPC's own reconnect backoff under it, had grown during the outage. Now the
link watches the channel while it backs off. A real gRPC server (the fake AgentGateway) appears
on an address where nothing listened; the backoff is the link's ``sleep`` seam under which a
grown delay never ends by itself, so only the channel becoming READY can end it (no wall-clock
assertion).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from agent.core import RegistrationBackoff
from agent.runtime.master_link import MasterLink, Session, fixed_master
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import agent_internal_pb2_grpc as ai_grpc
from tests.integration.agent.fake_master import FakeMaster
from tests.leader_fakes import Sleeps

WAIT = 60.0  # Guards each test against hanging; reaching it fails the test.


class Link:
    """A MasterLink to a fixed address, with recorded sessions."""

    def __init__(self, address: str, sleeps: Sleeps) -> None:
        self.sessions: list[Session] = []
        self.accepted = asyncio.Event()
        self.lost = asyncio.Event()
        # Jitter fixed near the top of the window: the delays double until one is "grown".
        backoff = RegistrationBackoff(factor=0.01, maximum=3600.0, random=lambda: 0.9)
        self.link = MasterLink(
            fixed_master(address),
            hello=self._hello,
            on_session=self._on_session,
            on_message=lambda message: None,
            on_lost=self.lost.set,
            backoff=backoff,
            sleep=sleeps,
        )

    @staticmethod
    def _hello() -> ai.AgentMessage:
        message = ai.AgentMessage()
        message.register_agent.agent_info.hostname = "restarted"
        return message

    def _on_session(self, session: Session) -> None:
        self.sessions.append(session)
        self.accepted.set()


def _free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


class MasterAt:
    """The fake master's AgentGateway served (again) on a fixed address."""

    def __init__(self, fake: FakeMaster, address: str) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        ai_grpc.add_AgentGatewayServicer_to_server(fake, self.server)
        assert self.server.add_insecure_port(address)
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0).wait()


@pytest.fixture
def fake() -> Iterator[FakeMaster]:
    master = FakeMaster(batched=True)
    try:
        yield master
    finally:
        master.stop()


def _run(body: Coroutine[Any, Any, None]) -> None:
    async def guarded() -> None:
        async with asyncio.timeout(WAIT):
            await body

    asyncio.run(guarded())


def test_a_grown_backoff_ends_when_the_master_is_back_at_its_address(fake: FakeMaster) -> None:
    async def body() -> None:
        address = _free_address()
        sleeps = Sleeps()
        link = Link(address, sleeps)
        link.link.start()
        server: MasterAt | None = None
        try:
            await sleeps.blocked.wait()  # A grown backoff, which would never end by itself.
            assert len(sleeps.delays) > 1  # Attempts failed, the backoff grew.
            server = MasterAt(fake, address)  # The master restarts on its address.
            await link.accepted.wait()
            assert sleeps.cut_short == 1
            # After the cut: one fresh delay from a reset backoff, [0, factor).
            assert 0 <= sleeps.delays[-1] < 0.01
            assert link.sessions[0].reply.HasField("agent_registered")
        finally:
            await link.link.stop()
            if server is not None:
                server.stop()

    _run(body())
    assert len(fake.sessions) == 1


def test_a_master_that_dies_and_returns_is_found_again(fake: FakeMaster) -> None:
    async def body() -> None:
        address = _free_address()
        sleeps = Sleeps()
        link = Link(address, sleeps)
        server = MasterAt(fake, address)
        link.link.start()
        try:
            await link.accepted.wait()
            link.accepted.clear()
            sleeps.blocked.clear()
            server.stop()  # The master dies: the session ends, attempts fail and back off.
            await link.lost.wait()
            await sleeps.blocked.wait()
            server = MasterAt(fake, address)
            await link.accepted.wait()
            assert sleeps.cut_short == 1
            assert link.link.sessions == 2
        finally:
            await link.link.stop()
            server.stop()

    _run(body())
    assert len(fake.sessions) == 2
    assert fake.sessions[1].hello.register_agent.agent_info.hostname == "restarted"


def test_a_reachable_master_that_refuses_is_not_retried_in_a_loop(fake: FakeMaster) -> None:
    """A master that answers but ends each session does not count as news: the backoff grows
    (here, to a sleep that never ends) instead of the link retrying at once."""

    class Refusing(ai_grpc.AgentGatewayServicer):
        def ConnectBatched(self, request_iterator: Any, context: Any) -> Any:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")

        def Connect(self, request_iterator: Any, context: Any) -> Any:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")

    async def body() -> None:
        address = _free_address()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        ai_grpc.add_AgentGatewayServicer_to_server(Refusing(), server)
        server.add_insecure_port(address)
        server.start()
        sleeps = Sleeps()
        link = Link(address, sleeps)
        link.link.start()
        try:
            await sleeps.blocked.wait()
            blocked_at = len(sleeps.delays)
            for _ in range(20):  # Give a hot loop every chance to show.
                await asyncio.sleep(0.01)
            assert len(sleeps.delays) == blocked_at
            assert sleeps.cut_short == 0
        finally:
            await link.link.stop()
            server.stop(0).wait()

    _run(body())
