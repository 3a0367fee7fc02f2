"""A gateway's bookkeeping of relayed sessions (master.gateway.link.RelayLink), without I/O."""

from __future__ import annotations

import asyncio

from master.gateway.link import RelayLink
from protos.v1 import agent_internal_pb2 as ai


def _hello() -> ai.AgentMessage:
    message = ai.AgentMessage()
    message.register_agent.agent_info.hostname = "h"
    return message


def test_a_session_the_master_ended_is_reported_over_once_the_agent_is_gone() -> None:
    async def scenario() -> None:
        link = RelayLink("unix:/nonexistent")
        link.ready = True
        session = link.open("c1", [_hello()], "agent-1")
        (opened,) = link._up
        assert (opened.connection, opened.principal) == ("c1", "agent-1")
        link._up.clear()
        # The master answers, then ends the session (say, it refused the agent).
        link._deliver(
            [
                ai.RelayFrame(
                    connection="c1", down=ai.MasterMessages(messages=[ai.MasterMessage()])
                ),
                ai.RelayFrame(connection="c1", end=ai.RelayEnd(code=7, details="denied")),
            ]
        )
        assert await session.take() == [ai.MasterMessage()]
        assert await session.take() is None
        assert session.end is not None
        assert session.end.code == 7
        # The agent's stream is over: the master hears of it once, whoever ended it.
        link.close("c1")
        link.close("c1")
        (ended,) = link._up
        assert ended.connection == "c1"
        assert ended.WhichOneof("kind") == "end"
        assert not ended.end.protocol_error

    asyncio.run(scenario())


def test_a_broken_relay_ends_every_session_unavailable_and_reports_nothing() -> None:
    async def scenario() -> None:
        link = RelayLink("unix:/nonexistent")
        link.ready = True
        first, second = link.open("c1", [_hello()], None), link.open("c2", [_hello()], None)
        link._end_all("the relay broke")
        for session in (first, second):
            assert await session.take() is None
            assert session.end is not None
            assert session.end.code == 14  # UNAVAILABLE: the agents reconnect
        link.ready = False
        link.close("c1")  # The master ended them all with the relay: nothing to report.
        assert link._up == []

    asyncio.run(scenario())
