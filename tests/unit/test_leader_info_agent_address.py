"""``agent_address`` in a candidate znode: where agents connect when the master has gateways."""

from __future__ import annotations

import json

import pytest

from protos.leader_info import LeaderInfoError, leader_from_json, master_info_json
from protos.v1 import mesos_pb2


def _info() -> mesos_pb2.MasterInfo:
    return mesos_pb2.MasterInfo(id="m1", ip=0, port=5050, hostname="master1")


def test_agents_go_to_the_agent_address_when_published() -> None:
    data = master_info_json(_info(), grpc_address="master1:5050", agent_address="master1:5052")
    assert json.loads(data)["agent_address"] == "master1:5052"
    leader = leader_from_json(data, "json.info_0000000001")
    assert (leader.grpc_address, leader.agent_address) == ("master1:5050", "master1:5052")
    assert leader.agents_target == "master1:5052"


def test_without_gateways_agents_go_to_the_grpc_address() -> None:
    data = master_info_json(_info(), grpc_address="master1:5050")
    assert "agent_address" not in json.loads(data)
    assert leader_from_json(data).agents_target == "master1:5050"


def test_a_bad_agent_address_is_refused_by_name() -> None:
    doc = json.loads(master_info_json(_info(), grpc_address="master1:5050"))
    doc["agent_address"] = "no-port"
    with pytest.raises(LeaderInfoError, match="agent_address 'no-port' is not 'host:port'"):
        leader_from_json(json.dumps(doc).encode())
