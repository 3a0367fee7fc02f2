"""Fixtures for framework_sdk's tests: a scripted master on port 0 and a fast client config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from framework_sdk import ClientConfig, messages
from tests.unit.sdk.scripted_master import ScriptedMaster

# Reconnect at once in tests; keep the other deadlines generous so slow machines never trip them.
FAST = ClientConfig(
    backoff_initial_seconds=0.01,
    backoff_max_seconds=0.05,
    subscribe_timeout_seconds=20.0,
    call_timeout_seconds=20.0,
)


@pytest.fixture(params=[True, False], ids=["batched", "plain"])
def master(request: pytest.FixtureRequest) -> Iterator[ScriptedMaster]:
    """A started ScriptedMaster (15 s heartbeats), stopped after the test; once serving
    Emporion's batched API and once answering it UNIMPLEMENTED, as a Mesos-only master would."""
    with ScriptedMaster(batched=request.param) as scripted:
        yield scripted


@pytest.fixture
def framework_info() -> messages.FrameworkInfo:
    """A plain framework info."""
    return messages.framework_info("test-framework", user="tester")
