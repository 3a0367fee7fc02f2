"""Pings: the agent answers them, and treats their absence as a lost master."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    """A fake master that pings every 0.1 s and announces a 1 s ping timeout."""
    fake = FakeMaster(ping_interval=0.1, ping_timeout=1.0)
    yield fake
    fake.stop()


def test_pings_are_answered_and_silence_means_the_master_is_lost(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent()
    session = master.session()
    master.wait_for(lambda: len(master.messages("pong")) >= 3, "pongs")
    assert [m.pong.seq for m in master.messages("pong")][:3] == [1, 2, 3]
    master.send_pings = False
    master.wait_for(lambda: len(master.sessions) == 2, "a new session")
    assert master.session().agent_id == session.agent_id
    assert master.session().hello.HasField("reregister_agent")
