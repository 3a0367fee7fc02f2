"""Fixtures for the executor side of framework_sdk: a scripted agent (and master) on port 0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.sdk.scripted_master import ScriptedMaster
from tests.unit.sdk_executor.scripted_agent import ScriptedAgent


@pytest.fixture
def agent() -> Iterator[ScriptedAgent]:
    """A started ScriptedAgent (acknowledging updates), stopped after the test."""
    with ScriptedAgent() as scripted:
        yield scripted


@pytest.fixture
def master() -> Iterator[ScriptedMaster]:
    """A started ScriptedMaster (the scheduler side's test double), stopped after the test."""
    with ScriptedMaster() as scripted:
        yield scripted
