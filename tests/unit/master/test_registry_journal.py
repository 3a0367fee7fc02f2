"""The file registry's journal: writes cost what they change, and a crash anywhere leaves a
version that was acknowledged (or the one being written), never a mix or an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from master.registry import (
    AdmitAgent,
    FileRegistry,
    FrameworkRecord,
    MarkAgentGone,
    MarkAgentUnreachable,
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
from master.registry.journal import decode_line, encode_line
from master.registry.state import Operation
from protos.resources import Resources
from protos.v1 import mesos_pb2, quota_pb2


def agent_info(agent_id: str, hostname: str = "h") -> mesos_pb2.AgentInfo:
    info = mesos_pb2.AgentInfo(hostname=hostname)
    info.id.value = agent_id
    info.resources.extend(Resources.parse("cpus:2;mem:512").to_protos())
    return info


def framework_info(framework_id: str) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(user="u", name="fw", failover_timeout=60.0)
    info.id.value = framework_id
    return info


def every_operation() -> list[Operation]:
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
        PutFramework(FrameworkRecord(framework_info("F2"), disconnected_at=50.0)),
        RemoveFramework("F1", 70.0, 10),
        UpdateWeights({"eng": 2.0}),
        UpdateQuota("eng", quota),
        UpdateQuota("ops", None),
        RemoveAgent("S9"),
    ]


def same(a: RegistryState, b: RegistryState) -> bool:
    return (
        a.version == b.version
        and a.agents == b.agents
        and a.unreachable == b.unreachable
        and a.gone == b.gone
        and a.frameworks == b.frameworks
        and a.weights == b.weights
        and a.quotas == b.quotas
        and a.reservations == b.reservations
        and a.completed_frameworks == b.completed_frameworks
    )


def big_registry(tmp_path: Path, agents: int = 200) -> tuple[FileRegistry, RegistryState]:
    """A registry whose document is past ``snapshot_min_bytes``: later writes are appended."""
    registry = FileRegistry(tmp_path, snapshot_min_bytes=1024)
    registry.load()
    ops: list[Operation] = [AdmitAgent(f"B{i}", agent_info(f"B{i}")) for i in range(agents)]
    registry.apply(ops)
    return registry, apply_operations(RegistryState(), ops)


def test_every_operation_reads_back_from_its_line() -> None:
    ops = every_operation()
    version, decoded = decode_line(encode_line(7, ops), "here")
    assert version == 7
    assert same(apply_operations(RegistryState(), decoded), apply_operations(RegistryState(), ops))


def test_small_changes_are_appended_and_replayed(tmp_path: Path) -> None:
    registry, expected = big_registry(tmp_path)
    document = (tmp_path / "registry.json").read_bytes()
    for i, op in enumerate(every_operation()):
        assert registry.apply([op]) == i + 2
        expected = apply_operations(expected, [op])
    assert registry.snapshots == 1  # The document was written once, then only appended to.
    assert (tmp_path / "registry.json").read_bytes() == document
    assert len((tmp_path / "registry.journal").read_bytes().splitlines()) == 13
    assert same(FileRegistry(tmp_path).load(), expected)


def test_an_append_costs_the_change_not_the_cluster(tmp_path: Path) -> None:
    small, _ = big_registry(tmp_path / "small", agents=100)
    large, _ = big_registry(tmp_path / "large", agents=2000)
    for registry in (small, large):
        registry.apply([AdmitAgent("NEW", agent_info("NEW"))])
    sizes = [r.journal_path.stat().st_size for r in (small, large)]
    assert sizes[0] == sizes[1] < 300


def test_the_document_is_rewritten_once_the_journal_outgrows_it(tmp_path: Path) -> None:
    registry, expected = big_registry(tmp_path, agents=20)
    size = (tmp_path / "registry.json").stat().st_size
    version = 1
    while registry.snapshots == 1:
        version += 1
        op = AdmitAgent(f"N{version}", agent_info(f"N{version}"))
        registry.apply([op])
        expected = apply_operations(expected, [op])
        assert registry.journal_path.stat().st_size <= size
    assert registry.journal_path.stat().st_size == 0
    assert same(FileRegistry(tmp_path).load(), expected)
    # Rewrites grow geometrically: the next one waits for a journal as large as this document.
    assert (tmp_path / "registry.json").stat().st_size > 1.5 * size


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    registry, expected = big_registry(tmp_path)
    op = PutFramework(FrameworkRecord(framework_info("F1")))
    registry.apply([op])
    expected = apply_operations(expected, [op])
    good = registry.journal_path.read_bytes()
    with registry.journal_path.open("ab") as out:
        out.write(b'{"version":3,"ops":[{"op":"remove_ag')
    loaded = FileRegistry(tmp_path).load()
    assert same(loaded, expected)
    assert registry.journal_path.read_bytes() == good  # Truncated back to the last full line.


def test_lines_older_than_the_document_are_skipped(tmp_path: Path) -> None:
    # A crash after the document's rename, before the journal was emptied.
    registry, expected = big_registry(tmp_path)
    stale = encode_line(1, [RemoveAgent("B0")])
    registry.journal_path.write_bytes(stale)
    assert same(FileRegistry(tmp_path).load(), expected)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json\n", r"registry\.journal:2: not JSON"),
        (b'{"version": 3, "ops": [{"op": "explode"}]}\n', "unknown operation 'explode'"),
        (b'{"version": 3, "ops": [{"op": "remove_agent"}]}\n', "malformed entry: 'agent_id'"),
        (b'{"version": 9, "ops": []}\n', "version 9 follows 2"),
        (
            b'{"version": 3, "ops": [{"op": "admit_agent", "agent_id": "S", "info": 5}]}\n',
            r"ops\[0\]\.info is not an object",
        ),
    ],
)
def test_a_damaged_journal_is_refused(tmp_path: Path, line: bytes, message: str) -> None:
    registry, _ = big_registry(tmp_path)
    registry.apply([RemoveAgent("B1")])
    with registry.journal_path.open("ab") as out:
        out.write(line)
    before = registry.journal_path.read_bytes()
    with pytest.raises(RegistryError, match=message):
        FileRegistry(tmp_path).load()
    assert registry.journal_path.read_bytes() == before


def test_a_failed_append_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, expected = big_registry(tmp_path)
    registry.apply([RemoveAgent("B1")])
    expected = apply_operations(expected, [RemoveAgent("B1")])
    before = registry.journal_path.read_bytes()

    def broken(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(RegistryError, match="disk gone"):
        registry.apply([RemoveAgent("B2")])
    monkeypatch.undo()
    assert registry.journal_path.read_bytes() == before
    assert same(FileRegistry(tmp_path).load(), expected)
    assert registry.apply([RemoveAgent("B3")]) == 3  # It goes on from the version it had.
    expected = apply_operations(expected, [RemoveAgent("B3")])
    assert same(FileRegistry(tmp_path).load(), expected)
