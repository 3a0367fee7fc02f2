"""master.core.snapshot.metrics_snapshot: Mesos's ``master/*`` gauges."""

from __future__ import annotations

from master.core import metrics_snapshot
from protos.v1 import mesos_pb2
from tests.unit.master.harness import Capability, Harness, accept_call, command_task

GAUGES = {
    "master/elected",
    "master/uptime_secs",
    *(
        f"master/slaves_{kind}"
        for kind in ("active", "inactive", "connected", "disconnected", "unreachable")
    ),
    *(f"master/frameworks_{kind}" for kind in ("active", "inactive", "connected", "disconnected")),
    "master/outstanding_offers",
    "master/faults",
    *(
        f"master/tasks_{state}"
        for state in ("staging", "starting", "running", "killing", "unreachable")
    ),
    # Counters of terminal states (Mesos's), since this master took the lead.
    *(
        f"master/tasks_{state}"
        for state in (
            "finished",
            "failed",
            "killed",
            "lost",
            "error",
            "dropped",
            "gone",
            "gone_by_operator",
        )
    ),
    *(
        f"master/{name}_{kind}"
        for name in ("cpus", "mem", "disk", "gpus")
        for kind in ("total", "used", "percent")
    ),
    *(
        f"master/{name}_revocable_{kind}"
        for name in ("cpus", "mem", "disk", "gpus")
        for kind in ("total", "used", "percent")
    ),
    # Mesos's event counters (mesos_exporter reads them), since this master took the lead.
    *(f"master/slave_{event}" for event in ("registrations", "reregistrations", "removals")),
    *(f"master/slave_shutdowns_{kind}" for kind in ("scheduled", "canceled", "completed")),
    *(
        f"master/{outcome}_{what}"
        for outcome in ("valid", "invalid")
        for what in (
            "status_updates",
            "status_update_acknowledgements",
            "framework_to_executor_messages",
            "executor_to_framework_messages",
        )
    ),
    "allocator/mesos/allocation_runs",  # (the allocation_run_ms timer once a cycle ran)
    "allocator/recovery_paused",  # Emporion's: 1 while a new leader waits for its agents
}


def test_a_master_that_does_not_lead_reports_only_that() -> None:
    assert metrics_snapshot(None, now=110.0, start_time=100.0) == {
        "master/elected": 0.0,
        "master/uptime_secs": 10.0,
    }


def test_an_empty_leader_reports_every_gauge_as_zero() -> None:
    metrics = metrics_snapshot(Harness().master, now=5.0, start_time=5.0)
    assert set(metrics) == GAUGES
    assert metrics["master/elected"] == 1.0
    assert all(v == 0.0 for k, v in metrics.items() if k != "master/elected")
    assert all(isinstance(v, float) for v in metrics.values())


def test_gauges_follow_agents_frameworks_tasks_and_offers() -> None:
    harness = Harness()
    busy = harness.register_agent(resources="cpus:4;mem:1000;gpus:1", hostname="a")
    harness.register_agent(resources="cpus:4;mem:1000", hostname="b")
    away = harness.register_agent(resources="cpus:2;mem:500", hostname="c")
    harness.disconnect_agent(away)
    gpu_capable = harness.framework_info(capabilities=[Capability.GPU_RESOURCES])
    framework_id, stream_id = harness.subscribe(gpu_capable)
    _, second_stream = harness.subscribe(harness.framework_info(name="second", failover_timeout=60))
    harness.close_stream(second_stream)
    harness.allocate()
    offer = next(o for o in harness.offers(framework_id) if o.agent_id.value == busy.agent_id)
    tasks = [
        command_task("t1", busy.agent_id, "cpus:1;mem:250"),
        command_task("t2", busy.agent_id, "cpus:2;mem:250"),
    ]
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks))
    harness.status_update(busy, framework_id, "t1", mesos_pb2.TASK_RUNNING, b"\x01" * 16)

    metrics = metrics_snapshot(harness.master, now=0.0, start_time=0.0)
    assert metrics["master/slaves_active"] == metrics["master/slaves_connected"] == 2.0
    assert metrics["master/slaves_inactive"] == metrics["master/slaves_disconnected"] == 1.0
    assert metrics["master/slaves_unreachable"] == 0.0
    assert metrics["master/frameworks_active"] == metrics["master/frameworks_connected"] == 1.0
    assert metrics["master/frameworks_inactive"] == 1.0
    assert metrics["master/frameworks_disconnected"] == 1.0
    assert metrics["master/outstanding_offers"] == len(harness.master.state.offers) == 1.0
    assert (metrics["master/tasks_running"], metrics["master/tasks_staging"]) == (1.0, 1.0)
    # Totals count every registered agent, connected or not; used is what tasks hold.
    assert (metrics["master/cpus_total"], metrics["master/cpus_used"]) == (10.0, 3.0)
    assert metrics["master/cpus_percent"] == 0.3
    assert (metrics["master/mem_total"], metrics["master/mem_used"]) == (2500.0, 500.0)
    assert metrics["master/mem_percent"] == 0.2
    assert (metrics["master/gpus_total"], metrics["master/gpus_percent"]) == (1.0, 0.0)
