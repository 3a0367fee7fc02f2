"""Fixtures for the master's unit tests: a harness whose state is validated after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from master.config import MasterConfig
from tests.unit.master.harness import FakeAgent, Harness


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A master with an in-memory registry; ``validate()`` runs after every step and at the end."""
    h = Harness(config=MasterConfig(registry="memory"))
    yield h
    h.master.validate()


@pytest.fixture
def agent(harness: Harness) -> FakeAgent:
    """One registered agent: cpus:4;mem:4096;disk:10000;ports:[31000-32000]."""
    return harness.register_agent()
