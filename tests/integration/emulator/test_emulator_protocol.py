"""The emulator's side of the internal agent protocol, against a fake master (``fake_gateway``).

Each test runs its own event loop (``asyncio.run``) with a real gRPC server on port 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from emporion.testing import AgentEmulator, EmulatedAgent, EmulatorCounters, Link, Mode
from emporion.testing.emulator_config import EmulatorConfig, parse_attributes, parse_master
from protos.resources import Resources
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2
from tests.integration.emulator.fake_gateway import (
    FakeGateway,
    FakeSession,
    eventually,
    running_gateway,
)

Body = Callable[[FakeGateway, AgentEmulator], Awaitable[None]]


def emulator_for(
    masters: str | list[str], agents: int = 1, mode: str = "finish", retry: float = 10.0
) -> AgentEmulator:
    """An emulator with short backoffs and ticks, so that tests reconnect quickly."""
    return AgentEmulator(
        masters,
        agents=agents,
        mode=mode,
        backoff_min=0.02,
        backoff_max=0.2,
        tick_interval=0.02,
        status_update_retry_min=retry,
        status_update_retry_max=2 * retry,
    )


def run(
    body: Body,
    agents: int = 1,
    mode: str = "finish",
    *,
    retry: float = 10.0,
    ping_interval: float = 0.0,
    ping_timeout: float = 0.0,
    batched: bool = False,
) -> None:
    """Run ``body`` with a fake gateway and a started emulator; validate the emulator after.

    With ``batched`` the fake serves ConnectBatched, else only Connect (the emulator falls back).
    """

    async def main() -> None:
        async with running_gateway(ping_interval, ping_timeout, batched=batched) as gateway:
            emulator = emulator_for(gateway.address, agents, mode, retry)
            async with emulator:
                await body(gateway, emulator)
                emulator.validate()
            emulator.validate()

    asyncio.run(main())


def run_task(
    task_id: str, framework: str = "fw-1", *, partition_aware: bool = False
) -> ai.MasterMessage:
    info = mesos_pb2.FrameworkInfo(user="u", name="fw")
    info.id.value = framework
    if partition_aware:
        info.capabilities.add(type=mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE)
    task = mesos_pb2.TaskInfo(name=task_id, resources=Resources.parse("cpus:0.1;mem:1").to_protos())
    task.task_id.value = task_id
    task.command.value = "true"
    message = ai.MasterMessage(run_task=ai.RunTask(framework_info=info, task=task, launch_seq=1))
    message.run_task.framework_id.value = framework
    return message


def ack(update: ai.StatusUpdate) -> ai.MasterMessage:
    message = ai.MasterMessage()
    a = message.status_update_acknowledgement
    a.framework_id.CopyFrom(update.framework_id)
    a.task_id.CopyFrom(update.status.task_id)
    a.uuid = update.status.uuid
    return message


def states(session: FakeSession) -> list[str]:
    return [mesos_pb2.TaskState.Name(u.status.state) for u in session.updates()]


# -- registration --------------------------------------------------------------------------------


def test_agents_register_with_their_resources_and_attributes() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        hellos = [s.hello.register_agent for s in gateway.sessions]
        assert len(hellos) == 20
        assert len({h.agent_info.hostname for h in hellos}) == 20
        assert all(not h.agent_info.HasField("id") for h in hellos)
        expected = Resources.parse("cpus:4;mem:1024;ports:[1-10]")
        assert all(Resources.from_protos(h.agent_info.resources) == expected for h in hellos)
        assert [a.name for a in hellos[0].agent_info.attributes] == ["rack", "level"]
        assert sorted(emulator.agent_ids) == sorted(s.agent_id for s in gateway.sessions)
        assert emulator.counters.registrations == 20
        assert not emulator.batched  # the fake serves only Connect: the emulator fell back
        assert all(a.link is Link.REGISTERED for a in emulator.agents)

    async def main() -> None:
        async with running_gateway() as gateway:
            emulator = AgentEmulator(
                gateway.address,
                agents=20,
                resources="cpus:4;mem:1024;ports:[1-10]",
                attributes="rack:r1;level:3",
            )
            async with emulator:
                await body(gateway, emulator)

    asyncio.run(main())


# -- status updates ------------------------------------------------------------------------------


@pytest.mark.parametrize("batched", [False, True], ids=["connect", "batched"])
def test_task_goes_running_then_finished_one_update_in_flight(batched: bool) -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        assert session.batched == emulator.batched == batched
        session.send(run_task("t1"))
        await eventually(lambda: len(session.updates()) == 1)
        running = session.updates()[0]
        assert running.status.state == mesos_pb2.TASK_RUNNING
        assert running.latest_state == mesos_pb2.TASK_FINISHED  # FINISHED waits behind it
        assert len(running.status.uuid) == 16
        assert running.status.agent_id.value == session.agent_id
        assert running.status.executor_id.value == "t1"  # the command executor's id
        assert running.framework_id.value == "fw-1"
        assert emulator.counters.run_task_at[("fw-1", "t1")] > 0
        session.send(ack(running))
        await eventually(lambda: len(session.updates()) == 2)
        finished = session.updates()[1]
        assert finished.status.state == mesos_pb2.TASK_FINISHED
        assert finished.status.uuid != running.status.uuid
        session.send(ack(finished))
        await eventually(lambda: emulator.counters.updates_acked == 2)
        assert emulator.task_state("t1") is None  # acknowledged terminal tasks are forgotten
        assert emulator.counters.tasks_launched == 1
        assert emulator.counters.unexpected_acks == 0

    run(body, batched=batched)


def test_unacknowledged_update_is_retried_with_its_uuid_until_acked() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        session.send(run_task("t1"))
        await eventually(lambda: len(session.updates()) >= 3)
        first, second, third = session.updates()[:3]
        assert first.status.uuid == second.status.uuid == third.status.uuid
        assert emulator.counters.updates_retried >= 2
        session.send(ack(first))
        await eventually(
            lambda: mesos_pb2.TASK_FINISHED in [u.status.state for u in session.updates()]
        )
        session.send(ack(first))  # a duplicate acknowledgement is ignored
        await eventually(lambda: emulator.counters.unexpected_acks == 1)

    run(body, retry=0.05)


def test_run_mode_keeps_tasks_running_until_told() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        session.send(run_task("t1"))
        session.send(run_task("t2"))
        await eventually(lambda: len(session.updates()) == 2)
        for update in session.updates():
            assert update.latest_state == mesos_pb2.TASK_RUNNING
            session.send(ack(update))
        await eventually(lambda: emulator.counters.updates_acked == 2)
        assert emulator.task_state("t1") == mesos_pb2.TASK_RUNNING
        emulator.finish("t1")
        reason = mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY
        emulator.fail("t2", reason=reason, message="out of memory")
        await eventually(lambda: len(session.updates()) == 4)
        finished, failed = sorted(session.updates()[2:], key=lambda u: u.status.task_id.value)
        assert finished.status.state == mesos_pb2.TASK_FINISHED
        assert failed.status.state == mesos_pb2.TASK_FAILED
        assert failed.status.reason == reason
        assert failed.status.message == "out of memory"
        with pytest.raises(ValueError, match="already TASK_FINISHED"):
            emulator.finish("t1")
        with pytest.raises(KeyError):
            emulator.finish("nope")

    run(body, mode="run")


def test_manual_mode_kill_queues_behind_the_in_flight_update() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        session.send(run_task("t1"))
        await eventually(lambda: emulator.counters.tasks_launched == 1)
        assert session.updates() == []  # manual: nothing until the test says so
        emulator.update("t1", mesos_pb2.TASK_RUNNING)
        await eventually(lambda: len(session.updates()) == 1)
        kill = ai.MasterMessage()
        kill.kill_task.framework_id.value = "fw-1"
        kill.kill_task.task_id.value = "t1"
        session.send(kill)
        await eventually(lambda: emulator.counters.kills == 1)
        assert emulator.task_state("t1") == mesos_pb2.TASK_KILLED
        assert len(session.updates()) == 1  # KILLED waits for RUNNING's acknowledgement
        session.send(ack(session.updates()[0]))
        await eventually(lambda: len(session.updates()) == 2)
        killed = session.updates()[1]
        assert killed.status.state == mesos_pb2.TASK_KILLED
        assert killed.latest_state == mesos_pb2.TASK_KILLED
        # Killing a task the agent never had answers once, TASK_LOST for a non-partition-aware
        # framework.
        kill.kill_task.task_id.value = "ghost"
        session.send(kill)
        await eventually(lambda: len(session.updates()) == 3)
        ghost = session.updates()[2]
        assert (ghost.status.task_id.value, ghost.status.state) == ("ghost", mesos_pb2.TASK_LOST)
        assert ghost.status.source == mesos_pb2.TaskStatus.SOURCE_AGENT

    run(body, mode="manual")


# -- liveness ------------------------------------------------------------------------------------


def test_pings_are_answered_until_the_agent_is_lost() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        first, second = gateway.sessions
        first.send(ai.MasterMessage(ping=ai.Ping(seq=7)))
        await eventually(lambda: first.pongs() == [7])
        emulator.lose_agent(first.agent_id, drop_stream=False)
        first.send(ai.MasterMessage(ping=ai.Ping(seq=8)))
        await eventually(lambda: emulator.counters.pings_ignored == 1)
        assert first.pongs() == [7]
        assert not first.ended
        emulator.lose_agent(second.agent_id)  # drops its stream and stays away
        await eventually(lambda: second.ended)
        await asyncio.sleep(0.1)  # several backoff periods: it must not come back by itself
        assert len(gateway.sessions) == 2
        emulator.restore_agent(second.agent_id)
        await eventually(lambda: len(gateway.sessions) == 3)
        assert gateway.sessions[2].hello.HasField("reregister_agent")
        emulator.restore_agent(first.agent_id)
        first.send(ai.MasterMessage(ping=ai.Ping(seq=9)))
        await eventually(lambda: first.pongs() == [7, 9])

    run(body, agents=2)


def test_agent_without_pings_treats_the_master_as_lost_and_reregisters() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        await eventually(lambda: emulator.counters.reregistrations >= 1)
        assert gateway.sessions[0].ended
        assert gateway.sessions[1].hello.HasField("reregister_agent")

    run(body, ping_interval=0.05, ping_timeout=0.1)


# -- reregistration ------------------------------------------------------------------------------


@pytest.mark.parametrize("batched", [False, True], ids=["connect", "batched"])
def test_broken_stream_reregisters_with_tasks_and_resends_the_pending_update(
    batched: bool,
) -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        session.send(run_task("t1"))
        await eventually(lambda: len(session.updates()) == 1)
        running = session.updates()[0]
        session.close()  # the master ends the stream (e.g. it failed over)
        await eventually(lambda: len(gateway.sessions) == 2)
        again = gateway.sessions[1]
        hello = again.hello.reregister_agent
        assert hello.agent_info.id.value == session.agent_id
        [task] = hello.tasks
        assert task.task_id.value == "t1"
        assert task.state == mesos_pb2.TASK_RUNNING
        assert task.status_update_state == mesos_pb2.TASK_RUNNING
        assert task.status_update_uuid == running.status.uuid
        assert task.framework_id.value == "fw-1"
        assert [f.id.value for f in hello.frameworks] == ["fw-1"]
        await eventually(lambda: len(again.updates()) == 1)
        assert again.updates()[0].status.uuid == running.status.uuid  # same update, resent
        assert emulator.counters.reregistrations == 1

    run(body, mode="run", batched=batched)


def test_emulator_restart_reregisters_every_agent_with_its_tasks() -> None:
    async def main() -> None:
        async with running_gateway() as gateway:
            emulator = emulator_for(gateway.address, agents=3, mode="run")
            async with emulator:
                for i, session in enumerate(gateway.sessions):
                    session.send(run_task(f"t{i}"))
                await eventually(lambda: emulator.counters.updates_sent == 3)
            emulator.validate()
            await eventually(lambda: all(s.ended for s in gateway.sessions))
            async with emulator:
                hellos = [s.hello.reregister_agent for s in gateway.sessions[3:]]
                assert len(hellos) == 3
                assert sorted(t.task_id.value for h in hellos for t in h.tasks) == [
                    "t0",
                    "t1",
                    "t2",
                ]
                await eventually(lambda: sum(len(s.updates()) for s in gateway.sessions[3:]) == 3)
                emulator.validate()

    asyncio.run(main())


def test_reregistration_answers_reconciliation_of_unknown_tasks() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        session.send(run_task("known", partition_aware=True))
        await eventually(lambda: len(session.updates()) == 1)
        reconcile = ai.ReconcileTasks()
        reconcile.framework_id.value = "fw-1"
        for task_id in ("known", "unknown"):
            reconcile.statuses.add(state=mesos_pb2.TASK_RUNNING).task_id.value = task_id
        gateway.reconciliations[session.agent_id] = [reconcile]
        emulator.restart_agent(session.agent_id)
        await eventually(
            lambda: len(gateway.sessions) == 2 and len(gateway.sessions[1].updates()) == 2
        )
        by_task = {u.status.task_id.value: u for u in gateway.sessions[1].updates()}
        assert by_task["known"].status.state == mesos_pb2.TASK_RUNNING  # resent pending update
        unknown = by_task["unknown"].status
        assert unknown.state == mesos_pb2.TASK_DROPPED  # the framework is partition-aware
        assert unknown.reason == mesos_pb2.TaskStatus.REASON_RECONCILIATION

    run(body, mode="run")


def test_refused_agents_try_the_next_master() -> None:
    async def main() -> None:
        async with running_gateway() as standby, running_gateway() as leader:
            standby.refusing = True
            masters = [standby.address, leader.address]
            async with emulator_for(masters, agents=4) as emulator:
                assert len(leader.sessions) == 4
                assert standby.sessions == []
                assert len(emulator.agent_ids) == 4

    asyncio.run(main())


# -- other master messages -----------------------------------------------------------------------


def test_framework_messages_are_recorded_and_echoed() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        message = ai.MasterMessage()
        message.framework_to_executor.framework_id.value = "fw-1"
        message.framework_to_executor.executor_id.value = "ex"
        message.framework_to_executor.data = b"hello"
        session.send(message)
        await eventually(lambda: any(m.HasField("executor_to_framework") for m in session.received))
        assert emulator.counters.framework_messages == [(session.agent_id, "fw-1", "ex", b"hello")]
        [echo] = [
            m.executor_to_framework for m in session.received if m.HasField("executor_to_framework")
        ]
        assert (echo.framework_id.value, echo.executor_id.value, echo.data) == (
            "fw-1",
            "ex",
            b"hello",
        )

    run(body)


def test_shutdown_framework_forgets_its_tasks_and_shutdown_agent_ends_the_agent() -> None:
    async def body(gateway: FakeGateway, emulator: AgentEmulator) -> None:
        session = gateway.sessions[0]
        session.send(run_task("t1"))
        await eventually(lambda: len(session.updates()) == 1)
        shutdown = ai.MasterMessage()
        shutdown.shutdown_framework.framework_id.value = "fw-1"
        session.send(shutdown)
        await eventually(lambda: emulator.task_state("t1") is None)
        session.send(ai.MasterMessage(shutdown_agent=ai.ShutdownAgent(message="removed")))
        await eventually(lambda: session.ended)
        await asyncio.sleep(0.1)
        assert len(gateway.sessions) == 1  # a shut-down agent never reconnects
        assert emulator.agents[0].link is Link.SHUT_DOWN

    run(body, mode="run")


# -- pieces --------------------------------------------------------------------------------------


def test_configuration_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="'masters'"):
        EmulatorConfig(masters=("nohost",))
    with pytest.raises(ValueError, match="'agents'"):
        EmulatorConfig(masters=("h:1",), agents=-1)
    with pytest.raises(ValueError, match="'resources'"):
        EmulatorConfig(masters=("h:1",), resources="cpus:-1")
    with pytest.raises(ValueError, match="'attributes'"):
        EmulatorConfig(masters=("h:1",), attributes="rack")
    with pytest.raises(ValueError, match="'backoff_min'"):
        EmulatorConfig(masters=("h:1",), backoff_min=float("nan"))
    with pytest.raises(ValueError, match="'mode'"):
        AgentEmulator("h:1", mode="sometimes")


def test_a_zk_url_is_a_master_of_its_own() -> None:
    url = "zk://u:secret@127.0.0.1:2181,127.0.0.1:2182/emporion"
    assert parse_master(url) == ((), url)
    assert parse_master("a:1, b:2") == (("a:1", "b:2"), "")
    assert parse_master(["a:1"]) == (("a:1",), "")
    emulator = AgentEmulator(url, agents=2, zk_session_timeout=3.0, reregister_spread=0.5)
    config = emulator.config
    assert (config.masters, config.zk_url) == ((), url)
    assert (config.zk_session_timeout, config.reregister_spread) == (3.0, 0.5)
    assert "secret" not in config.master_text
    assert emulator.leader is None  # Not started: nothing looked up yet.
    with pytest.raises(ValueError, match="'masters' and 'zk_url' are exclusive"):
        EmulatorConfig(masters=("h:1",), zk_url="zk://h:2181/emporion")
    with pytest.raises(ValueError, match="'zk_url'"):
        EmulatorConfig(masters=(), zk_url="zk://h:2181")  # no path
    with pytest.raises(ValueError, match="'masters'"):
        EmulatorConfig(masters=())
    with pytest.raises(ValueError, match="'reregister_spread'"):
        EmulatorConfig(masters=(), zk_url=url, reregister_spread=-1.0)
    with pytest.raises(ValueError, match="'zk_session_timeout'"):
        EmulatorConfig(masters=(), zk_url=url, zk_session_timeout=0.0)


def test_attributes_parse_to_mesos_types() -> None:
    rack, level, keys, os_ = parse_attributes(
        "rack:r1;level:10.5;keys:[1000-1500,2000-2001];os:{a,b}"
    )
    assert (rack.type, rack.text.value) == (mesos_pb2.Value.TEXT, "r1")
    assert (level.type, level.scalar.value) == (mesos_pb2.Value.SCALAR, 10.5)
    assert [(r.begin, r.end) for r in keys.ranges.range] == [(1000, 1500), (2000, 2001)]
    assert list(os_.set.item) == ["a", "b"]


def test_core_validate_catches_a_broken_invariant() -> None:
    info = mesos_pb2.AgentInfo(hostname="h")
    core = EmulatedAgent(info, Mode.FINISH, EmulatorCounters())
    core.validate()
    core.link = Link.REGISTERED
    with pytest.raises(AssertionError, match="has an id"):
        core.validate()
