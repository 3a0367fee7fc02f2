"""The emulator follows the leader a standby master names in its refusal (``emporion-leader``).

The emulator's backoff here outlasts the test's guard, so only an immediate switch passes.
"""

from __future__ import annotations

import asyncio

from emporion.testing import AgentEmulator
from emporion.testing.agent_emulator import MAX_REDIRECTS
from tests.integration.emulator.fake_gateway import running_gateway

GUARD_SECONDS = 60.0


def slow_emulator(masters: list[str], agents: int) -> AgentEmulator:
    """An emulator whose backoff after a failure (an hour) no test would wait for."""
    return AgentEmulator(
        masters, agents=agents, backoff_min=3600.0, backoff_max=3600.0, tick_interval=0.02
    )


def test_agents_switch_to_the_named_leader_at_once() -> None:
    async def main() -> None:
        async with running_gateway() as standby, running_gateway() as leader:
            standby.refusing, standby.leader = True, leader.address
            emulator = slow_emulator([standby.address, leader.address], agents=3)
            async with asyncio.timeout(GUARD_SECONDS), emulator:
                assert len(leader.sessions) == 3
                assert standby.refusals == 3
                emulator.validate()

    asyncio.run(main())


def test_a_named_leader_outside_the_masters_is_added() -> None:
    async def main() -> None:
        async with running_gateway() as standby, running_gateway() as leader:
            standby.refusing, standby.leader = True, leader.address
            emulator = slow_emulator([standby.address], agents=2)
            async with asyncio.timeout(GUARD_SECONDS), emulator:
                assert len(leader.sessions) == 2
                assert len(emulator.agent_ids) == 2

    asyncio.run(main())


def test_masters_naming_each_other_get_the_backoff() -> None:
    async def main() -> None:
        async with running_gateway() as first, running_gateway() as second:
            first.refusing, first.leader = True, second.address
            second.refusing, second.leader = True, first.address
            emulator = slow_emulator([first.address], agents=1)
            async with asyncio.timeout(GUARD_SECONDS):
                await emulator.start(wait=False)
                try:
                    # The first attempt plus MAX_REDIRECTS followed at once, then the backoff.
                    while first.refusals + second.refusals < MAX_REDIRECTS + 1:
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.2)
                    assert first.refusals + second.refusals == MAX_REDIRECTS + 1
                finally:
                    await emulator.stop()

    asyncio.run(main())
