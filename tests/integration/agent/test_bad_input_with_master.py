"""Bad input end to end, with the real master and a real agent (issue 10).

A 5 MB ``TaskInfo.data`` is over gRPC's default 4 MiB but under the one limit every Emporion
process uses: it reaches the agent and the task runs, where it used to break the agent's session
and come back TASK_LOST. An id the agent could not make a directory of is refused at ACCEPT
instead of leaving the task STAGING forever, and the agent goes on launching.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.raw_framework import Call, Event, MasterProcess, RawFramework


class OfferTrackingFramework(RawFramework):
    """A RawFramework that remembers the offers it used."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.used_offers: set[str] = set()


@pytest.fixture
def real_master(tmp_path: Path) -> Iterator[MasterProcess]:
    master = MasterProcess(tmp_path / "master")
    yield master
    master.stop()


@pytest.fixture
def master_address(real_master: MasterProcess) -> str:
    """Agents of these tests register with the real master."""
    return real_master.address


@pytest.fixture
def framework(real_master: MasterProcess) -> Iterator[OfferTrackingFramework]:
    framework = OfferTrackingFramework(real_master.address)
    framework.subscribe()
    yield framework
    framework.close()


def _launch(framework: OfferTrackingFramework, task: mesos_pb2.TaskInfo) -> None:
    """ACCEPT an offer not used yet with ``task`` (its agent id and resources filled in)."""
    used = set(framework.used_offers)

    def fresh() -> list[mesos_pb2.Offer]:
        offers = [o for e in framework.of(Event.OFFERS) for o in e.offers.offers]
        return [o for o in offers if o.id.value not in used]

    framework.wait_for(fresh, "an offer not used yet")
    offer = fresh()[-1]
    framework.used_offers.add(offer.id.value)
    task.agent_id.CopyFrom(offer.agent_id)
    task.resources.extend(Resources.parse("cpus:0.1;mem:32").to_protos())
    accept = Call(type=Call.ACCEPT)
    accept.accept.offer_ids.append(offer.id)
    accept.accept.filters.refuse_seconds = 0
    operation = accept.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    operation.launch.task_infos.append(task)
    framework.call("Accept", accept)


def _task(task_id: str, command: str) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name="t")
    task.task_id.value = task_id
    task.command.value = command
    return task


def test_a_5_mb_task_runs_and_a_bad_id_is_refused_at_accept(
    framework: OfferTrackingFramework, start_agent: StartAgent
) -> None:
    start_agent()
    big = _task("five-mb", "true")
    big.data = b"d" * (5 * 1024 * 1024)
    _launch(framework, big)
    framework.wait_state("five-mb", mesos_pb2.TASK_RUNNING)
    framework.wait_state("five-mb", mesos_pb2.TASK_FINISHED)
    assert not any(s.state == mesos_pb2.TASK_LOST for s in framework.updates("five-mb"))

    long_id = "x" * 300
    _launch(framework, _task(long_id, "true"))
    error = framework.wait_state(long_id, mesos_pb2.TASK_ERROR)
    assert error.reason == mesos_pb2.TaskStatus.REASON_TASK_INVALID
    assert "is 300 bytes long; an id is at most 255 bytes" in error.message

    _launch(framework, _task("after", "true"))
    framework.wait_state("after", mesos_pb2.TASK_FINISHED)
