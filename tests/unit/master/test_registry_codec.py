"""The registry codec: what a write after a load encodes again, and that a load is read back
the same whichever way its messages were spelled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from master.registry import AdmitAgent, FrameworkRecord, PutFramework, RegistryState
from master.registry.codec import StateCodec
from master.registry.state import apply_operations
from protos.resources import Resources
from protos.v1 import mesos_pb2


def agent_info(agent_id: str) -> mesos_pb2.AgentInfo:
    info = mesos_pb2.AgentInfo(hostname=f"host-{agent_id}", port=5051)
    info.id.value = agent_id
    info.resources.extend(Resources.parse("cpus:2;mem:512").to_protos())
    return info


def stored_state(agents: int) -> RegistryState:
    fw = mesos_pb2.FrameworkInfo(user="u", name="fw", failover_timeout=60)
    fw.id.value = "F1"
    operations: list[Any] = [AdmitAgent(f"S{i}", agent_info(f"S{i}")) for i in range(agents)]
    operations.append(PutFramework(FrameworkRecord(fw, 5.0)))
    return apply_operations(RegistryState(), operations)


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the messages the codec encodes from now on."""
    seen: list[str] = []
    real = json_format.MessageToDict

    def counting(message: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(type(message).__name__)
        return real(message, **kwargs)

    monkeypatch.setattr(json_format, "MessageToDict", counting)
    return seen


def test_a_write_after_a_load_encodes_only_what_changed(encodings: list[str]) -> None:
    data = StateCodec().encode(stored_state(50))
    codec = StateCodec()  # A new leader's: it has only loaded.
    loaded = codec.decode(data)
    encodings.clear()
    changed = apply_operations(loaded, [AdmitAgent("S-new", agent_info("S-new"))])
    written = codec.encode(changed)
    assert encodings == ["AgentInfo"]
    assert written == StateCodec().encode(changed)  # Byte for byte what encoding all gives.


def test_a_second_load_replaces_what_the_first_remembered(encodings: list[str]) -> None:
    codec = StateCodec()
    codec.decode(StateCodec().encode(stored_state(5)))
    loaded = codec.decode(StateCodec().encode(stored_state(3)))
    encodings.clear()
    assert json.loads(codec.encode(loaded))["agents"].keys() == {"S0", "S1", "S2"}
    assert encodings == []


def test_messages_spelled_otherwise_are_written_as_read_and_read_back_the_same() -> None:
    doc = json.loads(StateCodec().encode(stored_state(1)))
    agent = doc["agents"]["S0"]
    agent["resources"][0]["scalar"] = {"value": 2}  # A double spelled as an integer,
    doc["frameworks"]["F1"]["info"]["failoverTimeout"] = 60  # a field in camelCase.
    del doc["frameworks"]["F1"]["info"]["failover_timeout"]
    codec = StateCodec()
    loaded = codec.decode(json.dumps(doc).encode())
    again = StateCodec().decode(codec.encode(loaded))
    assert again.agents == loaded.agents == stored_state(1).agents
    assert again.frameworks == loaded.frameworks
