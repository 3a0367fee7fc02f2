"""The pure parts of leader election: zk:// URLs, candidate names, MasterInfo JSON, standalone."""

from __future__ import annotations

import json

import pytest

from protos.leader import Leadership, StandaloneLeader
from protos.leader_info import (
    LeaderInfo,
    LeaderInfoError,
    ZkUrl,
    candidate_name,
    candidates,
    leader_from_json,
    master_info_json,
    parse_zk_url,
    predecessor,
    sequence_of,
)
from protos.v1 import mesos_pb2

# -- URLs -------------------------------------------------------------------------------------


def test_parse_zk_url_hosts_ports_and_path() -> None:
    url = parse_zk_url("zk://10.0.0.1:2181,zk2:2182,[::1]:2183,zk4/mesos/emporion/")
    assert url.hosts == (("10.0.0.1", 2181), ("zk2", 2182), ("::1", 2183), ("zk4", 2181))
    assert url.path == "/mesos/emporion"
    assert url.connect_string == "10.0.0.1:2181,zk2:2182,[::1]:2183,zk4:2181"
    assert url.digest_auth is None
    assert str(url) == "zk://10.0.0.1:2181,zk2:2182,[::1]:2183,zk4:2181/mesos/emporion"


def test_parse_zk_url_credentials_are_hidden_from_str_and_repr() -> None:
    url = parse_zk_url("zk://alice:s3cret@zk1:2181/emporion")
    assert url.digest_auth == "alice:s3cret"
    assert "s3cret" not in str(url)
    assert "s3cret" not in repr(url)
    assert str(url) == "zk://alice:***@zk1:2181/emporion"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://zk1:2181/emporion", "must start with zk://"),
        ("zk1:2181/emporion", "must start with zk://"),
        ("zk:///emporion", "names no host"),
        ("zk://zk1:2181", "needs a path"),
        ("zk://zk1:2181/", "needs a path"),
        ("zk://zk1:0/emporion", "invalid port '0'"),
        ("zk://zk1:70000/emporion", "invalid port '70000'"),
        ("zk://zk1:abc/emporion", "invalid port 'abc'"),
        ("zk://zk1:2181,,zk2:2181/emporion", "empty host"),
        ("zk://::1:2181/emporion", "in brackets"),
        ("zk://[::1/emporion", "malformed IPv6 host"),
        ("zk://zk_bad!:2181/emporion", "invalid host"),
        ("zk://zk1:2181/a//b", "empty segment"),
        ("zk://zk1:2181/a/../b", "'.' or '..'"),
        ("zk://zk1:2181/zookeeper/x", "reserved"),
        ("zk://zk1:2181/a b", "whitespace"),
        ("zk://zk1:2181/a?x=1", "'?' or '#'"),
        ("zk://:pw@zk1:2181/a", "empty user name"),
    ],
)
def test_parse_zk_url_rejects_malformed_urls_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="ZooKeeper URL") as error:
        parse_zk_url(text)
    assert message in str(error.value)


def test_parse_zk_url_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_zk_url(b"zk://h/p")  # type: ignore[arg-type]


# -- candidates -------------------------------------------------------------------------------


def test_candidates_are_ordered_by_sequence_and_filtered_by_label() -> None:
    children = [
        "json.info_0000000012",
        "registry",
        "info_0000000001",  # Mesos before 0.23: not ours to read.
        "json.info_0000000003",
        "json.info_00000000x1",
        "json.info_10000000000",  # Past ten digits: still a sequence.
    ]
    assert candidates(children) == [
        "json.info_0000000003",
        "json.info_0000000012",
        "json.info_10000000000",
    ]
    assert sequence_of("json.info_0000000042") == 42
    assert sequence_of("registry") is None
    assert sequence_of("json.info_-000000001") is None
    assert candidate_name(7) == "json.info_0000000007"


def test_predecessor_is_the_next_older_candidate() -> None:
    children = ["json.info_0000000005", "json.info_0000000001", "json.info_0000000009"]
    assert predecessor(children, "json.info_0000000001") is None
    assert predecessor(children, "json.info_0000000005") == "json.info_0000000001"
    assert predecessor(children, "json.info_0000000009") == "json.info_0000000005"
    with pytest.raises(ValueError, match="not among"):
        predecessor(children, "json.info_0000000002")


# -- MasterInfo JSON --------------------------------------------------------------------------


def master_info(master_id: str = "m-1", port: int = 5050) -> mesos_pb2.MasterInfo:
    info = mesos_pb2.MasterInfo(
        id=master_id,
        ip=16777343,  # 127.0.0.1 in network byte order, read natively.
        port=port,
        pid=f"master@127.0.0.1:{port}",
        hostname="localhost",
        version="0.1.0",
    )
    info.address.hostname = "localhost"
    info.address.ip = "127.0.0.1"
    info.address.port = port
    return info


def test_master_info_json_is_mesos_format_plus_our_addresses() -> None:
    data = master_info_json(master_info(), http_address="127.0.0.1:8080")
    doc = json.loads(data)
    assert doc == {
        "id": "m-1",
        "ip": 16777343,
        "port": 5050,
        "pid": "master@127.0.0.1:5050",
        "hostname": "localhost",
        "version": "0.1.0",
        "address": {"hostname": "localhost", "ip": "127.0.0.1", "port": 5050},
        "grpc_address": "127.0.0.1:5050",
        "http_address": "127.0.0.1:8080",
    }
    leader = leader_from_json(data, "json.info_0000000004")
    assert leader.master_info == master_info()
    assert leader.grpc_address == "127.0.0.1:5050"
    assert leader.http_address == "127.0.0.1:8080"
    assert leader.sequence == 4
    assert leader.master_id == "m-1"


def test_explicit_grpc_address_wins() -> None:
    data = master_info_json(master_info(), grpc_address="[::1]:6000")
    assert leader_from_json(data).grpc_address == "[::1]:6000"


def test_a_mesos_written_candidate_is_reached_at_its_address() -> None:
    # What a Mesos master writes (no grpc_address; unknown fields are ignored).
    mesos = {
        "address": {"hostname": "m1.example", "ip": "10.1.2.3", "port": 5050},
        "hostname": "m1.example",
        "id": "a5a4f2a3-0000",
        "ip": 50462986,
        "pid": "master@10.1.2.3:5050",
        "port": 5050,
        "version": "1.11.0",
        "capabilities": [{"type": "AGENT_UPDATE"}],
        "domain": {},
        "something_newer": True,
    }
    leader = leader_from_json(json.dumps(mesos).encode(), "json.info_0000000131")
    assert leader.grpc_address == "10.1.2.3:5050"
    assert leader.master_info.version == "1.11.0"
    assert leader.http_address is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x01", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"port": 5050, "hostname": "h"}', "no id"),
        (b'{"id": "x"}', "no address"),
        (b'{"id": "x", "port": "many"}', "bad MasterInfo"),
        (b'{"id": "x", "grpc_address": "nohost"}', "not 'host:port'"),
        (b'{"id": "x", "grpc_address": 5}', "must be a 'host:port' string"),
    ],
)
def test_unusable_candidate_data_is_refused_precisely(data: bytes, message: str) -> None:
    with pytest.raises(LeaderInfoError, match=message):
        leader_from_json(data, "json.info_0000000001")


def test_master_info_json_needs_an_id_and_an_address() -> None:
    with pytest.raises(LeaderInfoError, match="id is required"):
        master_info_json(mesos_pb2.MasterInfo(hostname="h", port=1))
    with pytest.raises(LeaderInfoError, match="give grpc_address"):
        master_info_json(mesos_pb2.MasterInfo(id="x"))
    with pytest.raises(LeaderInfoError, match="http_address"):
        master_info_json(master_info(), http_address="8080")


def test_same_master_compares_candidacy_id_and_address() -> None:
    a = LeaderInfo(master_info(), "127.0.0.1:5050", None, "json.info_0000000001")
    assert a.same_master(LeaderInfo(master_info(), "127.0.0.1:5050", None, a.node))
    assert not a.same_master(
        LeaderInfo(master_info(), "127.0.0.1:5050", None, "json.info_0000000002")
    )
    assert not a.same_master(None)


def test_zk_url_is_frozen() -> None:
    url = ZkUrl((("h", 1),), "/p")
    with pytest.raises(AttributeError):
        url.path = "/q"  # type: ignore[misc]


# -- standalone -------------------------------------------------------------------------------


def test_standalone_leader_leads_once_started_until_withdrawn() -> None:
    info = LeaderInfo(master_info(), "127.0.0.1:5050")
    standalone = StandaloneLeader(info)
    roles: list[Leadership] = []
    leaders: list[LeaderInfo | None] = []
    standalone.add_listener(roles.append)
    detector = standalone.detector()
    detector.add_listener(leaders.append)
    observed = [(standalone.leading, detector.leader)]
    standalone.start()
    standalone.start()  # Idempotent.
    observed.append((standalone.leading, detector.leader))
    standalone.withdraw()
    standalone.start()  # Withdrawn for good.
    observed.append((standalone.leading, detector.leader))
    assert observed == [(False, None), (True, info), (False, None)]
    assert roles == [Leadership(True, "standalone master", 1), Leadership(False, "withdrew", 1)]
    assert leaders == [info, None]


def test_a_failing_listener_does_not_stop_the_others() -> None:
    standalone = StandaloneLeader(LeaderInfo(master_info(), "127.0.0.1:5050"))
    seen: list[bool] = []

    def bad(change: Leadership) -> None:
        raise RuntimeError("listener bug")

    standalone.add_listener(bad)
    remove = standalone.add_listener(lambda change: seen.append(change.leading))
    standalone.start()
    remove()
    standalone.withdraw()
    assert seen == [True]
