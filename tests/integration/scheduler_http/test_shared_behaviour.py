"""One behaviour suite, three transports: gRPC, HTTP with JSON bodies, HTTP with protobuf.

Every scenario runs against a real master (port 0, HTTP on port 0) and a fake agent session,
through the transport's own client, and expects the same events and the same refusals; only
the form of a refusal differs (a gRPC status, or Mesos's HTTP status), given by :data:`REFUSED`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from master.runtime import MasterServer
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.master.clients import FakeAgent, quick_config, running_master, wait_for
from tests.integration.scheduler_http.clients import (
    JSON_MEDIA,
    PROTOBUF_MEDIA,
    Call,
    Event,
    GrpcScheduler,
    HttpScheduler,
    Outcome,
)

Op = mesos_pb2.Offer.Operation
Client = GrpcScheduler | HttpScheduler
TRANSPORTS = ["grpc", "http-json", "http-protobuf"]

REFUSED: dict[str, dict[str, str | int]] = {
    # refusal kind -> transport kind -> code
    "malformed": {"grpc": "INVALID_ARGUMENT", "http": 400},
    "unknown framework": {"grpc": "FAILED_PRECONDITION", "http": 400},
    "no stream id": {"grpc": "INVALID_ARGUMENT", "http": 400},
    "other stream": {"grpc": "PERMISSION_DENIED", "http": 400},
    "unknown agent": {"grpc": "NOT_FOUND", "http": 404},
}


def expect_refused(outcome: Outcome, transport: str, kind: str) -> None:
    assert not outcome.ok, outcome
    assert outcome.code == REFUSED[kind][transport.split("-", maxsplit=1)[0]], outcome


@asynccontextmanager
async def cluster() -> AsyncIterator[tuple[MasterServer, FakeAgent]]:
    async with running_master(quick_config(http_port=0)) as server:
        agent = FakeAgent(server.address)
        try:
            await agent.register("cpus:2;mem:1024;ports:[31000-31009]")
            yield server, agent
        finally:
            await agent.close()


def client_factory(server: MasterServer, transport: str) -> Callable[[], Client]:
    def make() -> Client:
        if transport == "grpc":
            return GrpcScheduler(server.address)
        assert server.http_address is not None
        media = JSON_MEDIA if transport == "http-json" else PROTOBUF_MEDIA
        return HttpScheduler(server.http_address, media)

    return make


def launch_call(offer: mesos_pb2.Offer, task_id: str) -> Call:
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    call.accept.filters.refuse_seconds = 0
    task = call.accept.operations.add(type=Op.LAUNCH).launch.task_infos.add(name=task_id)
    task.task_id.value = task_id
    task.agent_id.CopyFrom(offer.agent_id)
    task.resources.extend(Resources.parse("cpus:1;mem:128;ports:[31000-31000]").to_protos())
    task.command.value = "true"
    return call


def ack_call(status: mesos_pb2.TaskStatus) -> Call:
    call = Call(type=Call.ACKNOWLEDGE)
    call.acknowledge.agent_id.CopyFrom(status.agent_id)
    call.acknowledge.task_id.CopyFrom(status.task_id)
    call.acknowledge.uuid = status.uuid
    return call


def revive_call() -> Call:
    call = Call(type=Call.REVIVE)
    call.revive.SetInParent()
    return call


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_launch_run_finish_acknowledged(transport: str) -> None:
    async def main() -> None:
        async with cluster() as (server, agent):
            scheduler = client_factory(server, transport)()
            try:
                framework_id = await scheduler.subscribe()
                (subscribed,) = scheduler.of(Event.SUBSCRIBED)
                assert subscribed.subscribed.heartbeat_interval_seconds == 0.5
                assert subscribed.subscribed.master_info.id == server.master_id
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                offer = scheduler.offers()[0]
                assert offer.agent_id.value == agent.agent_id
                assert Resources.from_protos(offer.resources) == Resources.parse(
                    "cpus:2;mem:1024;ports:[31000-31009]"
                )
                assert (await scheduler.send(launch_call(offer, "t1"))).ok
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                assert agent.of("run_task")[0].run_task.framework_id.value == framework_id
                for n, state in enumerate((mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_FINISHED), 1):
                    await agent.status_update(framework_id, "t1", state, uuid.uuid4().bytes)
                    await wait_for(lambda n=n: len(scheduler.updates("t1")) == n, "an update")  # type: ignore[misc]
                    status = scheduler.updates("t1")[-1]
                    assert status.state == state
                    assert (await scheduler.send(ack_call(status))).ok
                    await wait_for(
                        lambda n=n: len(agent.of("status_update_acknowledgement")) == n,  # type: ignore[misc]
                        "the acknowledgement relayed to the agent",
                    )
                    relayed = agent.of("status_update_acknowledgement")[-1]
                    assert relayed.status_update_acknowledgement.uuid == status.uuid
                await wait_for(lambda: bool(scheduler.of(Event.HEARTBEAT)), "a heartbeat")
            finally:
                await scheduler.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconcile_answers_with_the_known_state(transport: str) -> None:
    async def main() -> None:
        async with cluster() as (server, agent):
            scheduler = client_factory(server, transport)()
            try:
                framework_id = await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                assert (await scheduler.send(launch_call(scheduler.offers()[0], "t1"))).ok
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                await agent.status_update(
                    framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
                )
                await wait_for(lambda: bool(scheduler.updates("t1")), "RUNNING")
                reconcile = Call(type=Call.RECONCILE)
                reconcile.reconcile.tasks.add().task_id.value = "t1"
                reconcile.reconcile.tasks.add().task_id.value = "nobody"
                assert (await scheduler.send(reconcile)).ok
                await wait_for(lambda: bool(scheduler.updates("nobody")), "the unknown task")
                await wait_for(lambda: len(scheduler.updates("t1")) == 2, "t1 reconciled")
                known = scheduler.updates("t1")[-1]
                assert known.state == mesos_pb2.TASK_RUNNING
                assert known.reason == mesos_pb2.TaskStatus.REASON_RECONCILIATION
                assert not known.HasField("uuid")  # Master-generated: nothing to acknowledge.
                unknown = scheduler.updates("nobody")[-1]
                assert unknown.state in (mesos_pb2.TASK_LOST, mesos_pb2.TASK_UNKNOWN)
            finally:
                await scheduler.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_newer_subscription_supersedes_the_older(transport: str) -> None:
    async def main() -> None:
        async with cluster() as (server, _agent):
            make = client_factory(server, transport)
            first, second = make(), make()
            try:
                framework_id = await first.subscribe()
                assert await second.subscribe(framework_id=framework_id) == framework_id
                await asyncio.wait_for(first.ended.wait(), 30)
                (error,) = first.of(Event.ERROR)
                assert error.error.message == "Framework failed over"
                expect_refused(await first.send(revive_call()), transport, "other stream")
                assert (await second.send(revive_call())).ok
            finally:
                await first.close()
                await second.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused_calls_change_nothing(transport: str) -> None:
    async def main() -> None:
        async with cluster() as (server, agent):
            scheduler = client_factory(server, transport)()
            try:
                stranger = revive_call()
                stranger.framework_id.value = "nobody-0000"
                outcome = await scheduler.send(stranger, stream_id="x")
                expect_refused(outcome, transport, "unknown framework")
                await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                offer = scheduler.offers()[0]

                expect_refused(await scheduler.send(revive_call(), ""), transport, "no stream id")
                outcome = await scheduler.send(Call(type=Call.ACCEPT))
                expect_refused(outcome, transport, "malformed")
                assert "accept" in outcome.message
                stray = ack_call(mesos_pb2.TaskStatus(uuid=uuid.uuid4().bytes))
                stray.acknowledge.agent_id.value = "no-such-agent"
                stray.acknowledge.task_id.value = "t1"
                expect_refused(await scheduler.send(stray), transport, "unknown agent")
                # Nothing changed: the offer is still good.
                assert (await scheduler.send(launch_call(offer, "t1"))).ok
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
            finally:
                await scheduler.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_teardown_ends_the_stream_and_forgets_the_framework(transport: str) -> None:
    async def main() -> None:
        async with cluster() as (server, _agent):
            scheduler = client_factory(server, transport)()
            try:
                framework_id = await scheduler.subscribe()
                assert (await scheduler.send(Call(type=Call.TEARDOWN))).ok
                await asyncio.wait_for(scheduler.ended.wait(), 30)
                assert server.core is not None
                assert framework_id not in server.core.state.frameworks
                outcome = await scheduler.send(revive_call())
                # gRPC says the framework was torn down; Mesos says it cannot be found.
                expected = "FAILED_PRECONDITION" if transport == "grpc" else 400
                assert (outcome.ok, outcome.code) == (False, expected)
                assert "torn down" in outcome.message
            finally:
                await scheduler.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kill_and_message_reach_the_agent(transport: str) -> None:
    async def main() -> None:
        async with cluster() as (server, agent):
            scheduler = client_factory(server, transport)()
            try:
                framework_id = await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                assert (await scheduler.send(launch_call(scheduler.offers()[0], "t1"))).ok
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                await agent.status_update(
                    framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
                )
                await wait_for(lambda: bool(scheduler.updates("t1")), "RUNNING")

                kill = Call(type=Call.KILL)
                kill.kill.task_id.value = "t1"
                kill.kill.agent_id.value = agent.agent_id
                assert (await scheduler.send(kill)).ok
                await wait_for(lambda: bool(agent.of("kill_task")), "KillTask")
                assert agent.of("kill_task")[0].kill_task.task_id.value == "t1"

                message = Call(type=Call.MESSAGE)
                message.message.agent_id.value = agent.agent_id
                message.message.executor_id.value = "t1"
                message.message.data = b"\x00binary\xff"
                assert (await scheduler.send(message)).ok
                await wait_for(lambda: bool(agent.of("framework_to_executor")), "the message")
                (relayed,) = agent.of("framework_to_executor")
                assert relayed.framework_to_executor.data == b"\x00binary\xff"
            finally:
                await scheduler.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("before", "after"),
    [("grpc", "http-json"), ("http-protobuf", "grpc")],
    ids=["to-http", "to-grpc"],
)
def test_a_framework_fails_over_from_one_transport_to_the_other(before: str, after: str) -> None:
    async def main() -> None:
        async with cluster() as (server, _agent):
            first = client_factory(server, before)()
            second = client_factory(server, after)()
            try:
                framework_id = await first.subscribe()
                assert await second.subscribe(framework_id=framework_id) == framework_id
                await asyncio.wait_for(first.ended.wait(), 30)
                assert [e.error.message for e in first.of(Event.ERROR)] == ["Framework failed over"]
                expect_refused(await first.send(revive_call()), before, "other stream")
                assert (await second.send(revive_call())).ok
                await wait_for(lambda: bool(second.offers()), "an offer on the new transport")
            finally:
                await first.close()
                await second.close()

    asyncio.run(main())
