"""The gate of a master taking the lead (master.runtime.services.Gate): calls wait for the
runtime instead of being refused, and are refused as before if the lead is not taken."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import grpc
import pytest

from master.runtime.services import Gate


class RefusedError(Exception):
    """What the fake context's abort raises."""


class Context:
    """The two methods of a servicer context the gate uses."""

    def __init__(self) -> None:
        self.trailing: Any = ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise RefusedError(code, details)


RUNTIME: Any = object()


def test_a_call_waits_while_the_master_takes_the_lead() -> None:
    async def scenario() -> Any:
        gate = Gate(leader=lambda: None)
        gate.taking_lead()
        entering = asyncio.ensure_future(gate.enter(Context()))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not entering.done()  # Held, not refused.
        gate.runtime = RUNTIME
        gate.settled()
        return await entering

    assert asyncio.run(scenario()) is RUNTIME


def test_a_call_is_refused_when_the_lead_is_not_taken_after_all() -> None:
    async def scenario() -> None:
        gate = Gate(leader=lambda: "other:5050")
        gate.taking_lead()
        context = Context()
        entering = asyncio.ensure_future(gate.enter(context))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        gate.settled()  # Lost meanwhile: no runtime.
        with pytest.raises(RefusedError, match="the leader is at other:5050"):
            await entering
        assert ("emporion-leader", "other:5050") in context.trailing

    asyncio.run(scenario())


def test_without_an_election_under_way_a_follower_refuses_at_once() -> None:
    async def scenario() -> None:
        with pytest.raises(RefusedError, match="no leader is known"):
            await asyncio.wait_for(Gate().enter(Context()), 1.0)  # type: ignore[arg-type]

    asyncio.run(scenario())
