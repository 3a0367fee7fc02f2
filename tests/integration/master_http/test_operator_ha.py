"""The operator API under ``--zk``: a follower answers GET_HEALTH and GET_METRICS itself and
redirects every other call (307, POST kept) to the leader; SUBSCRIBE streams from the leader end
when it dies, and the new leader serves them.

Real ``python -m master --zk --http-port 0`` processes and a real ZooKeeper server.
"""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest

from emporion.testing.master_processes import ZkMaster
from tests.integration.ha.conftest import (  # noqa: F401 (fixtures)
    MasterFactory,
    wait_one_leader,
    zk_masters,
    zk_server,
    zk_url,
)

pytestmark = pytest.mark.zk


def post(master: ZkMaster, body: dict[str, Any], *, follow: bool = False) -> httpx.Response:
    return httpx.post(
        f"http://{master.http_address}/api/v1", json=body, follow_redirects=follow, timeout=10
    )


def test_followers_redirect_operator_calls_and_streams_end_with_their_leader(
    zk_masters: MasterFactory,  # noqa: F811
) -> None:
    masters = zk_masters(2)
    leader = wait_one_leader(masters)
    [follower] = [m for m in masters if m is not leader]

    health = post(follower, {"type": "GET_HEALTH"})
    assert (health.status_code, health.json()["get_health"]) == (200, {"healthy": True})
    metrics = post(follower, {"type": "GET_METRICS"}).json()["get_metrics"]["metrics"]
    assert {"name": "master/elected", "value": 0.0} in metrics
    for kind in ("GET_STATE", "GET_TASKS", "UPDATE_WEIGHTS", "SUBSCRIBE"):
        response = post(follower, {"type": kind})
        assert response.status_code == 307
        assert response.headers["location"] == f"http://{leader.http_address}/api/v1"
    body = {
        "type": "UPDATE_WEIGHTS",
        "update_weights": {"weight_infos": [{"role": "eng", "weight": 2.0}]},
    }
    assert post(follower, body, follow=True).status_code == 200  # 307 keeps POST and body
    weights = post(leader, {"type": "GET_WEIGHTS"}).json()["get_weights"]["weight_infos"]
    assert weights == [{"role": "eng", "weight": 2.0}]

    with httpx.stream(
        "POST",
        f"http://{leader.http_address}/api/v1",
        json={"type": "SUBSCRIBE", "subscribe": {"include_state": False}},
        timeout=30,
    ) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_bytes()
        assert b'"SUBSCRIBED"' in next(chunks)
        leader.stop(signal.SIGKILL)
        with pytest.raises(httpx.HTTPError):
            for _ in chunks:
                pass
    successor = wait_one_leader([follower])
    assert successor is follower
    # The weight was persisted in the registry: the new leader has it.
    weights = post(follower, {"type": "GET_WEIGHTS"}).json()["get_weights"]["weight_infos"]
    assert weights == [{"role": "eng", "weight": 2.0}]
