"""The one message-size limit on the agent's side (issue 10): a 5 MB ``TaskInfo.data`` used to
be accepted by the master, then end the agent's whole session (gRPC's 4 MiB receive default),
and the task came back TASK_LOST. A real agent process and the fake master's gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from protos.limits import MAX_MESSAGE_BYTES
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import command_task, run_task


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    """The fake master, speaking ConnectBatched."""
    fake = FakeMaster(batched=True)
    yield fake
    fake.stop()


@pytest.fixture
def master_address(master: FakeMaster) -> str:
    """Agents of these tests register with the fake master."""
    return master.address


def test_a_run_task_larger_than_grpcs_default_reaches_the_agent_in_its_session(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent()
    task = command_task("big", "true")
    task.data = b"x" * (5 * 1024 * 1024)
    message = run_task(task)
    assert 4 * 1024 * 1024 < message.ByteSize() < MAX_MESSAGE_BYTES
    master.send(message)
    master.wait_and_ack("big", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("big", mesos_pb2.TASK_FINISHED)
    assert len(master.sessions) == 1  # The session carried it; nothing was cut.
