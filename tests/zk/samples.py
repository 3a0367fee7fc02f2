"""Registry content for the ZooKeeper registry's tests: every kind of record, and bulk."""

from __future__ import annotations

import random

from master.registry import (
    AdmitAgent,
    FrameworkRecord,
    MarkAgentGone,
    MarkAgentUnreachable,
    Operation,
    PutFramework,
    UpdateQuota,
    UpdateReservations,
    UpdateWeights,
)
from protos.resources import Resources
from protos.v1 import mesos_pb2, quota_pb2


def agent_info(agent_id: str, hostname: str = "h", noise: str = "") -> mesos_pb2.AgentInfo:
    """An AgentInfo; ``noise`` goes into a text attribute (to make documents large)."""
    info = mesos_pb2.AgentInfo(hostname=hostname)
    info.id.value = agent_id
    info.resources.extend(Resources.parse("cpus:2;mem:512;ports:[31000-32000]").to_protos())
    if noise:
        attribute = info.attributes.add(name="noise", type=mesos_pb2.Value.TEXT)
        attribute.text.value = noise
    return info


def framework_info(framework_id: str, timeout: float = 60.0) -> mesos_pb2.FrameworkInfo:
    """A FrameworkInfo with an id and a failover timeout."""
    info = mesos_pb2.FrameworkInfo(user="u", name="fw", failover_timeout=timeout)
    info.id.value = framework_id
    return info


def every_kind() -> list[Operation]:
    """Operations touching every part of the registry."""
    quota = quota_pb2.QuotaConfig(role="eng")
    quota.guarantees["cpus"].value = 2
    return [
        AdmitAgent("S1", agent_info("S1")),
        AdmitAgent("S2", agent_info("S2", "h2")),
        AdmitAgent("S3", agent_info("S3", "h3")),
        MarkAgentUnreachable("S2", 100.0),
        MarkAgentGone("S3", 200.0),
        UpdateReservations("S1", tuple(Resources.parse("cpus(eng[dynamic:p]):1").to_protos())),
        PutFramework(FrameworkRecord(framework_info("F1"))),
        PutFramework(FrameworkRecord(framework_info("F2", 30), disconnected_at=50.0)),
        UpdateWeights({"eng": 2.0}),
        UpdateQuota("eng", quota),
    ]


def many_agents(count: int, noise_bytes: int = 0, seed: int = 7) -> list[Operation]:
    """``count`` admissions, each agent carrying ``noise_bytes`` of random hex (which zlib
    cannot squeeze much below half)."""
    rng = random.Random(seed)
    return [
        AdmitAgent(
            f"agent-{i:06d}",
            agent_info(f"agent-{i:06d}", f"host-{i}", rng.randbytes(noise_bytes // 2).hex()),
        )
        for i in range(count)
    ]
