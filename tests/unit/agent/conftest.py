"""Fixtures for the agent's unit tests: deterministic core states, validated after each test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from agent.core import AgentState, CoreSettings, RetrySchedule, StatusUpdateManager, handle
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.agent.helpers import master_registered

AGENT_RESOURCES = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]"

MakeAgent = Callable[..., AgentState]


def counting_uuids() -> Callable[[], bytes]:
    """uuid factory giving 16-byte values 1, 2, 3, ... so tests can name them."""
    counter = itertools.count(1)
    return lambda: next(counter).to_bytes(16, "big")


def uuid_n(n: int) -> bytes:
    """The n-th uuid of :func:`counting_uuids`."""
    return n.to_bytes(16, "big")


@pytest.fixture
def make_agent() -> Iterator[MakeAgent]:
    """Build registered AgentStates with predictable ids; at teardown each must be valid and
    must not have had a handler fail (tests that inject a fault reset ``faults``)."""
    made: list[AgentState] = []

    def make(
        resources: str = AGENT_RESOURCES, registered: bool = True, **settings: float
    ) -> AgentState:
        counter = itertools.count(1)
        info = mesos_pb2.AgentInfo(hostname="agent.test", port=5051)
        state = AgentState(
            Resources.parse(resources),
            info,
            CoreSettings(status_update_retry=RetrySchedule(10, 600), **settings),
            new_uuid=counting_uuids(),
            new_container_id=lambda: f"c{next(counter)}",
        )
        if registered:
            handle(state, master_registered("agent-1"), 0.0)
        made.append(state)
        state.validate()
        return state

    yield make
    for state in made:
        state.validate()
        assert state.faults == 0, f"a handler failed: {state.last_fault}"


@pytest.fixture
def manager() -> Iterator[StatusUpdateManager]:
    """A resumed status update manager (retry 10 s doubling to 600 s), validated at teardown."""
    made = StatusUpdateManager(RetrySchedule(10, 600))
    made.resume(0.0)
    yield made
    made.validate()
