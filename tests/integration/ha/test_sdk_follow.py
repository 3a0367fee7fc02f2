"""The SDK follows the leading master at once: a frozen leader is left while its stream is still
open, a grown backoff after kill -9 is cut short by the election, a call refused by a master that
does not lead names the leader.

Real ``python -m master --zk`` processes and a real ZooKeeper server; the frameworks name the
masters by the ``zk://`` URL. No wall-clock assertions: what caused each move is read from the
client's events and from its ``sleep`` seam (a backoff that could never end by itself).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import grpc
import pytest

from emporion.testing.master_processes import ZkMaster
from framework_sdk import (
    CallFailedError,
    ClientConfig,
    SchedulerClient,
    SchedulerDriver,
    calls,
    events,
    messages,
)
from framework_sdk._batching import CallSender
from framework_sdk.session import SchedulerSession
from protos.leader_info import candidates, leader_from_json, parse_zk_url
from protos.leader_zk import zookeeper_client
from protos.v1 import scheduler_pb2_grpc
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader
from tests.leader_fakes import Sleeps
from tests.unit.sdk.test_driver import Recorder

pytestmark = pytest.mark.zk

CONFIG = ClientConfig(
    backoff_initial_seconds=0.05,
    backoff_max_seconds=30.0,
    subscribe_timeout_seconds=10.0,
    call_timeout_seconds=10.0,
)
GROWN = 1.0
"""Backoff delays from this long on never end in test (b): only the election can end them."""

_ESTABLISHED, _CLOSE_WAIT = "01", "08"  # States in /proc/net/tcp.


def _info(name: str) -> messages.FrameworkInfo:
    # Kept by the next leader: the client comes back as the same framework.
    return messages.framework_info(name, failover_timeout=300)


async def _next(client: SchedulerClient) -> events.Event:
    async with asyncio.timeout(WAIT):
        event = await anext(client.events())
    assert not isinstance(event, events.Error), event
    return event


# -- TCP connections, from /proc --


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # Closed meanwhile.
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp() -> list[tuple[int, int, str, str]]:
    """(local port, remote port, state, inode) of every TCP socket (gRPC's are IPv6 sockets,
    with IPv4-mapped addresses for 127.0.0.1)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            ports = int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)
            rows.append((*ports, state, inode))
    return rows


def _connections_to(port: int) -> set[int]:
    """The local ports of this process's established connections to ``port``."""
    mine = _socket_inodes(os.getpid())
    return {
        local
        for local, remote, state, inode in _tcp()
        if remote == port and state == _ESTABLISHED and inode in mine
    }


def _server_side(master: ZkMaster, peers: set[int]) -> list[str]:
    """The states of ``master``'s own sockets for connections from ``peers`` (local ports)."""
    assert master.process is not None
    held = _socket_inodes(master.process.pid)
    return [
        state
        for local, remote, state, inode in _tcp()
        if local == master.port and remote in peers and inode in held
    ]


def _stopped(master: ZkMaster) -> bool:
    assert master.process is not None
    status = Path(f"/proc/{master.process.pid}/status").read_text()
    return "\nState:\tT" in status


# -- (a) a frozen leader --


def test_a_frozen_leader_is_left_without_waiting_for_its_stream_to_break(
    zk_url: str, zk_masters: MasterFactory
) -> None:
    masters = zk_masters(2, session_timeout=2.0)
    old = wait_one_leader(masters)
    new = next(m for m in masters if m is not old)

    async def body() -> None:
        async with SchedulerClient(zk_url, _info("frozen"), config=CONFIG) as client:
            first = await _next(client)
            assert isinstance(first, events.Subscribed)
            assert first.master_info is not None
            assert first.master_info.id == old.master_id
            streams = _connections_to(old.port)
            assert streams, "no connection to the leader"
            old.pause()  # Past its session timeout: ZooKeeper names the other master.
            lost = await _next(client)
            assert isinstance(lost, events.Disconnected)
            assert lost.reason == (
                f"the leading master moved from {old.address} to {new.address},"
                " says the master detector"
            )
            back = await _next(client)
            assert isinstance(back, events.Subscribed)
            assert back.resubscribed
            assert back.master_info is not None
            assert back.master_info.id == new.master_id
            assert back.framework_id == first.framework_id
            # The frozen master never ended the stream: it is still stopped, and its side of
            # the connection was never closed (the client's close left it in CLOSE_WAIT).
            assert _stopped(old)
            states = _server_side(old, streams)
            assert states
            assert set(states) <= {_ESTABLISHED, _CLOSE_WAIT}
            old.resume()
            await client.reconcile()  # Still subscribed to the new leader.
            assert client.subscribed
            assert client.master_address == new.address

    asyncio.run(body())


def test_the_driver_leaves_a_frozen_leader_too(zk_url: str, zk_masters: MasterFactory) -> None:
    masters = zk_masters(2, session_timeout=2.0)
    old = wait_one_leader(masters)
    new = next(m for m in masters if m is not old)
    recorder = Recorder()
    driver = SchedulerDriver(recorder, _info("frozen-driver"), zk_url, config=CONFIG)
    try:
        driver.start()
        (_, master_info) = recorder.wait_for("registered")[0]
        assert master_info.id == old.master_id
        old.pause()
        (master_info,) = recorder.wait_for("reregistered")[0]
        assert master_info.id == new.master_id
        assert _stopped(old)  # Nothing from the frozen master made the driver leave.
        assert recorder.names() == ["registered", "disconnected", "reregistered"]
    finally:
        old.resume()
        driver.abort()
        driver.join()


# -- (b) kill -9: the election ends a grown backoff --


def _expire_candidacy(zk_url: str, master: ZkMaster) -> None:
    """Delete ``master``'s candidate znode, as ZooKeeper does when its session expires."""
    url = parse_zk_url(zk_url)
    zk = zookeeper_client(url, session_timeout=5.0)
    zk.start(timeout=WAIT)
    try:
        first = candidates(zk.get_children(url.path))[0]
        data, _ = zk.get(f"{url.path}/{first}")
        assert leader_from_json(data, first).grpc_address == master.address
        zk.delete(f"{url.path}/{first}")
    finally:
        zk.stop()
        zk.close()


def test_after_kill_9_the_election_ends_a_grown_backoff(
    zk_url: str, zk_masters: MasterFactory
) -> None:
    # Sessions outlast the test: the dead leader stays named until the test expires it.
    masters = zk_masters(2, session_timeout=60.0)
    old = wait_one_leader(masters)
    new = next(m for m in masters if m is not old)

    async def body() -> None:
        sleeps = Sleeps(GROWN)
        client = SchedulerClient(
            zk_url, _info("killed"), config=CONFIG, rng=random.Random(5), sleep=sleeps
        )
        async with client:
            assert isinstance(await _next(client), events.Subscribed)
            old.stop(signal.SIGKILL)
            lost = await _next(client)
            assert isinstance(lost, events.Disconnected)
            assert lost.reason.startswith("the stream broke (UNAVAILABLE")
            # ZooKeeper still names the dead master: attempts fail until the backoff has grown
            # into a sleep that would never end.
            async with asyncio.timeout(WAIT):
                await sleeps.blocked.wait()
            assert client.session.attempt >= 5
            assert client.master_address == old.address
            await asyncio.to_thread(_expire_candidacy, zk_url, old)
            back = await _next(client)
            assert isinstance(back, events.Subscribed)
            assert back.master_info is not None
            assert back.master_info.id == new.master_id
            assert sleeps.cut_short == 1  # The election ended the backoff, nothing else.

    asyncio.run(body())
    assert wait_one_leader([new]) is new


# -- (c) a call refused by a master that does not lead --


def test_a_call_refused_by_a_follower_names_the_leader(zk_masters: MasterFactory) -> None:
    masters = zk_masters(2)
    leader = wait_one_leader(masters)
    follower = next(m for m in masters if m is not leader)
    named: list[tuple[str, str]] = []

    async def body() -> None:
        session = SchedulerSession(_info("refused"))
        sender = CallSender(session, 10.0, on_leader=lambda _, who, what: named.append((who, what)))
        reconcile = calls.reconcile([])
        reconcile.framework_id.value = "framework-1"
        async with grpc.aio.insecure_channel(follower.address) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            with pytest.raises(CallFailedError) as caught:
                await sender.invoke(stub, "stream-1", reconcile)
            error = caught.value
            assert (error.call_type, error.code) == ("RECONCILE", "UNAVAILABLE")
            assert error.leader == leader.address
            assert error.message == f"not the leading master; the leader is at {leader.address}"
            # A Batch is refused as a whole: each of its calls carries the hint.
            outcomes = await sender.transmit(stub, "stream-1", [reconcile, reconcile], True)
            assert [o.leader for o in outcomes if isinstance(o, CallFailedError)] == [
                leader.address,
                leader.address,
            ]

    asyncio.run(body())
    assert named == [(leader.address, "RECONCILE"), (leader.address, "a Batch of 2 calls")]
