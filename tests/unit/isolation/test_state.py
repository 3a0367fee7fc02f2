"""ContainerState: the checkpoint record round-trips through JSON and is validated on load."""

from __future__ import annotations

import dataclasses
import json

import pytest

from agent.isolation import ContainerState

STATE = ContainerState(
    container_id="c1",
    isolation="cgroups-v1",
    pid=1234,
    start_time=987654,
    sandbox="/work/sandbox",
    cgroups=("/sys/fs/cgroup/memory/emporion/c1", "/sys/fs/cgroup/cpu/emporion/c1"),
    namespaces=True,
    init_pid=1235,
    run_dir="/run/emporion/c1",
)


def test_round_trip_through_json() -> None:
    assert ContainerState.from_json(STATE.to_json()) == STATE


def test_plain_json_serialisable() -> None:
    assert json.loads(json.dumps(dataclasses.asdict(STATE)))["cgroups"] == list(STATE.cgroups)


def test_minimal_state_takes_defaults() -> None:
    data = {"container_id": "c", "isolation": "posix", "pid": 1, "start_time": 2, "sandbox": "/s"}
    state = ContainerState.from_dict(data)
    assert state.cgroups == ()
    assert state.init_pid is None
    assert state.namespaces is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pid": "12"}, "field 'pid' has bad value '12'"),
        ({"pid": True}, "field 'pid' has bad value True"),
        ({"cgroups": [1]}, "field 'cgroups' has bad value"),
        ({"extra": 1}, "unknown fields: extra"),
        ({"version": 99}, "unsupported container state version 99"),
    ],
)
def test_bad_state_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContainerState.from_dict({**STATE.to_dict(), **change})


def test_missing_field_is_named() -> None:
    data = STATE.to_dict()
    del data["start_time"]
    with pytest.raises(ValueError, match="lacks 'start_time'"):
        ContainerState.from_dict(data)


def test_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        ContainerState.from_json("{")
