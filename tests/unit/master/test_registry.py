"""The registry: operations, the file format, versions, and atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from master.registry import (
    AdmitAgent,
    FileRegistry,
    FrameworkRecord,
    MarkAgentGone,
    MarkAgentUnreachable,
    MemoryRegistry,
    PutFramework,
    RegistryError,
    RegistryState,
    RemoveAgent,
    RemoveFramework,
    UpdateQuota,
    UpdateReservations,
    UpdateWeights,
    apply_operations,
)
from master.registry.file import FORMAT
from protos.resources import Resources
from protos.v1 import mesos_pb2, quota_pb2


def agent_info(agent_id: str, hostname: str = "h") -> mesos_pb2.AgentInfo:
    info = mesos_pb2.AgentInfo(hostname=hostname)
    info.id.value = agent_id
    info.resources.extend(Resources.parse("cpus:2;mem:512").to_protos())
    return info


def framework_info(framework_id: str, timeout: float = 60.0) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(user="u", name="fw", failover_timeout=timeout)
    info.id.value = framework_id
    return info


def sample_operations() -> list[object]:
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


def test_operations_build_the_state() -> None:
    state = apply_operations(RegistryState(), sample_operations())  # type: ignore[arg-type]
    assert state.version == 1
    assert set(state.agents) == {"S1"}
    assert state.unreachable["S2"].unreachable_at == 100.0
    assert state.gone == {"S3": 200.0}
    assert state.frameworks["F2"].failover_deadline == 80.0
    assert state.frameworks["F1"].failover_deadline is None
    assert state.weights == {"eng": 2.0}
    assert state.quotas["eng"].guarantees["cpus"].value == 2
    assert Resources.from_protos(state.reservations["S1"]) == Resources.parse(
        "cpus(eng[dynamic:p]):1"
    )
    again = apply_operations(
        state,
        [
            AdmitAgent("S2", agent_info("S2")),
            RemoveAgent("S1"),
            RemoveFramework("F1"),
            UpdateQuota("eng", None),
            UpdateReservations("S9", ()),
        ],
    )
    assert set(again.agents) == {"S2"}
    assert again.unreachable == {}
    assert again.reservations == {}
    assert again.quotas == {}
    assert set(again.frameworks) == {"F2"}
    assert set(state.agents) == {"S1"}  # The old version is untouched.


def test_stored_messages_are_copies() -> None:
    info = agent_info("S1")
    state = apply_operations(RegistryState(), [AdmitAgent("S1", info)])
    info.hostname = "changed"
    assert state.agents["S1"].hostname == "h"


def test_file_registry_round_trip(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    assert registry.load().version == 0
    assert registry.apply(sample_operations()) == 1  # type: ignore[arg-type]
    assert registry.apply([RemoveFramework("F1")]) == 2
    loaded = FileRegistry(tmp_path).load()
    expected = apply_operations(
        apply_operations(RegistryState(), sample_operations()),  # type: ignore[arg-type]
        [RemoveFramework("F1")],
    )
    assert loaded.version == 2
    assert loaded.agents == expected.agents
    assert loaded.unreachable == expected.unreachable
    assert loaded.gone == expected.gone
    assert loaded.frameworks == expected.frameworks
    assert loaded.weights == expected.weights
    assert loaded.quotas == expected.quotas
    assert loaded.reservations == expected.reservations
    doc = json.loads((tmp_path / "registry.json").read_text())
    assert doc["format"] == FORMAT
    assert doc["version"] == 2
    assert doc["agents"]["S1"]["hostname"] == "h"
    assert doc["frameworks"]["F2"]["disconnected_at"] == 50.0


def test_crash_mid_write_leaves_the_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = FileRegistry(tmp_path)
    registry.apply([AdmitAgent("S1", agent_info("S1"))])
    before = (tmp_path / "registry.json").read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(RegistryError, match="disk gone"):
        registry.apply([AdmitAgent("S2", agent_info("S2"))])
    monkeypatch.undo()
    assert (tmp_path / "registry.json").read_bytes() == before
    assert list(tmp_path.iterdir()) == [tmp_path / "registry.json"]  # No temporary left over.
    # The registry object did not move on either: the next write starts from version 1.
    assert registry.apply([AdmitAgent("S3", agent_info("S3"))]) == 2
    assert set(FileRegistry(tmp_path).load().agents) == {"S1", "S3"}


def test_partial_temporary_file_from_a_crash_is_ignored(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path)
    registry.apply([AdmitAgent("S1", agent_info("S1"))])
    (tmp_path / "registry.json.tmp-12345").write_text('{"format": "emporion-regi')
    loaded = FileRegistry(tmp_path).load()
    assert set(loaded.agents) == {"S1"}
    assert loaded.version == 1
    assert not (tmp_path / "registry.json.tmp-12345").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"format": "other"}', "is not in format"),
        ('{"format": "emporion-registry/1", "agents": {"S1": 5}}', "bad agent S1"),
    ],
)
def test_unreadable_registry_is_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "registry.json").write_text(content)
    with pytest.raises(RegistryError, match=message):
        FileRegistry(tmp_path).load()


def test_unchanged_messages_are_encoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.protobuf import json_format

    registry = FileRegistry(tmp_path)
    registry.apply([AdmitAgent(f"S{i}", agent_info(f"S{i}")) for i in range(50)])
    calls = 0
    original = json_format.MessageToDict

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(json_format, "MessageToDict", counting)
    registry.apply([AdmitAgent("S50", agent_info("S50"))])
    assert calls == 1
    assert registry.writes == 2


def test_memory_registry() -> None:
    registry = MemoryRegistry()
    assert registry.apply([UpdateWeights({"a": 1.5})]) == 1
    assert registry.load().weights == {"a": 1.5}
