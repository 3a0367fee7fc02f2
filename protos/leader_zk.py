"""ZooKeeper leader election and detection, and the znode operations of the ZooKeeper registry.

The public face is :mod:`protos.leader` (which re-exports everything here); this module holds
the kazoo side. The election is Mesos's (znodes and JSON in :mod:`protos.leader_info`):

* each :class:`ZooKeeperContender` creates an EPHEMERAL|SEQUENCE znode ``<path>/json.info_``
  holding its MasterInfo; the lowest sequence leads; every other contender watches only the
  candidate just before its own (no herd effect when the leader goes); the leader watches its
  own znode, so it notices if it is deleted;
* connection SUSPENDED means "not leading" at once: the session may be expiring on the server
  and another master may be elected any moment (kazoo's documented advice). If the connection
  comes back within the session, the znode is still there and the contender leads again, in a
  new ``term``; if the session was LOST, the znode is gone, and the contender contends again with
  a new znode in the client's new session;
* a :class:`ZooKeeperDetector` watches the children of ``<path>`` and reads the lowest
  candidate's data.

**Threads.** Listeners are called on kazoo's threads, in order, and must not block: an asyncio
program forwards them with ``loop.call_soon_threadsafe`` (:mod:`protos.leader_aio` does). State
changes and watches only *kick* a worker thread per contender/detector, which makes the
ZooKeeper calls; kazoo's own threads never block.

:class:`KazooZnodeStore` gives the master's ZooKeeper registry its few znode operations, with
compare-and-set and an optional *fence* (the leader's own candidate znode, checked in the same
transaction as each write).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    SessionExpiredError,
)
from kazoo.retry import KazooRetry

from protos.leader_info import (
    MASTER_INFO_LABEL,
    LeaderInfo,
    LeaderInfoError,
    Leadership,
    Listeners,
    ZkUrl,
    candidates,
    leader_from_json,
    parse_zk_url,
    predecessor,
)

__all__ = [
    "KazooZnodeStore",
    "ZooKeeperContender",
    "ZooKeeperDetector",
    "zookeeper_client",
]

log = logging.getLogger("protos.leader")

# Errors meaning "the connection or session is gone": wait for the next CONNECTED and retry.
_DISCONNECTED = (ConnectionLoss, SessionExpiredError, ConnectionClosedError)


def zookeeper_client(
    url: ZkUrl | str,
    *,
    session_timeout: float = 10.0,
    reconnect_max_delay: float = 1.0,
) -> KazooClient:
    """A (not yet started) kazoo client for ``url``'s hosts, with its digest credentials.

    It reconnects forever, waiting at most ``reconnect_max_delay`` between attempts, so a
    client notices a returning ZooKeeper within about a second (kazoo's default waits grow to an
    hour). Start it with ``client.start_async()`` (returns at once; listeners hear CONNECTED) or
    ``client.start(timeout)``; stop it with ``client.stop(); client.close()``.
    """
    zk = parse_zk_url(url) if isinstance(url, str) else url
    if not session_timeout > 0:
        raise ValueError(f"session_timeout must be positive, got {session_timeout}")
    retry = KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=reconnect_max_delay)
    auth = [("digest", zk.digest_auth)] if zk.digest_auth is not None else None
    return KazooClient(
        hosts=zk.connect_string,
        timeout=session_timeout,
        connection_retry=retry,
        auth_data=auth,
    )


class _SerialWorker:
    """Runs ``work`` on a spawned thread, never twice at once; a kick during a run runs it again.

    Watches and state changes only *kick*: they never block kazoo's threads.
    """

    def __init__(self, client: KazooClient, work: Callable[[], None], name: str) -> None:
        self._client = client
        self._work = work
        self._name = name
        self._lock = threading.Lock()
        self._running = False
        self._dirty = False
        self._stopped = False

    def kick(self, *_event: object) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._running:
                self._dirty = True
                return
            self._running = True
        self._client.handler.spawn(self._loop)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._dirty = False
            try:
                self._work()
            except _DISCONNECTED as error:
                # The next CONNECTED kicks us again.
                log.debug("%s: ZooKeeper unavailable (%s); waiting to reconnect", self._name, error)
            except Exception:
                log.exception("%s failed; it runs again at the next ZooKeeper event", self._name)
            with self._lock:
                if not self._dirty or self._stopped:
                    self._running = False
                    return


class ZooKeeperContender:
    """ZooKeeperContender contends for leadership with a candidate znode (see the module doc).

    ``client`` is a kazoo client (started or not: contending begins once it connects), one per
    contender (the session is the candidacy); the caller owns it and stops it after
    :meth:`withdraw`. ``data`` is the candidate's content,
    usually :func:`~protos.leader_info.master_info_json`. ``node`` is the full path of the
    current candidate znode (None between sessions); a leader passes it as the *fence* of its
    registry writes.
    """

    def __init__(
        self,
        client: KazooClient,
        path: str,
        data: bytes,
        *,
        label: str = MASTER_INFO_LABEL,
        withdraw_timeout: float = 5.0,
    ) -> None:
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.data = data
        self.label = label
        self.withdraw_timeout = withdraw_timeout
        self._lock = threading.RLock()
        self._listeners: Listeners[Leadership] = Listeners()
        self._worker = _SerialWorker(client, self._contend, f"contender {self.path}")
        self._node: str | None = None
        self._leading = False
        self._term = 0
        self._session = 0  # Bumped when the session is LOST: the znode died with it.
        self._link = 0  # Bumped on SUSPENDED or LOST: an election seen before is stale.
        self._started = False
        self._withdrawn = False

    # -- public --

    @property
    def leading(self) -> bool:
        """Whether this contender leads right now."""
        return self._leading

    @property
    def term(self) -> int:
        """How many times this contender was elected (the current or last term)."""
        return self._term

    @property
    def node(self) -> str | None:
        """Full path of the candidate znode, or None while there is none."""
        return self._node

    def add_listener(self, listener: Callable[[Leadership], None]) -> Callable[[], None]:
        """Call ``listener`` with each :class:`Leadership` change (on kazoo's threads)."""
        return self._listeners.add(listener)

    def start(self) -> None:
        """Begin contending (returns at once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.client.add_listener(self._on_state)
        if self.client.state == KazooState.CONNECTED:
            self._worker.kick()

    def withdraw(self) -> None:
        """Stop leading and contending; delete the candidate znode (waits up to
        ``withdraw_timeout`` for ZooKeeper). Idempotent."""
        with self._lock:
            if self._withdrawn:
                return
            self._withdrawn = True
            self._set_leading(False, "withdrew")
            node, self._node = self._node, None
        self._worker.stop()
        self.client.remove_listener(self._on_state)
        if node is not None:
            self._delete_quietly(node)

    # -- kazoo callbacks (must not block) --

    def _on_state(self, state: str) -> None:
        if state == KazooState.SUSPENDED:
            with self._lock:
                self._link += 1
                self._set_leading(False, "ZooKeeper connection suspended")
        elif state == KazooState.LOST:
            with self._lock:
                self._link += 1
                self._session += 1
                self._set_leading(False, "ZooKeeper session lost")
                self._node = None
        else:
            self._worker.kick()

    # -- the worker --

    def _set_leading(self, leading: bool, reason: str) -> None:
        """Change role and tell the listeners (call with the lock held)."""
        if leading == self._leading:
            return
        if leading:
            self._term += 1
        self._leading = leading
        log.info(
            "%s %s leadership (term %d): %s",
            self._node or self.path,
            "took" if leading else "lost",
            self._term,
            reason,
        )
        self._listeners.call(Leadership(leading, reason, self._term))

    def _contend(self) -> None:
        for _ in range(20):  # Each pass either settles or saw the candidates change under it.
            if not self._contend_once():
                return
        log.warning("contender %s: candidates keep changing; waiting for the next event", self.path)

    def _contend_once(self) -> bool:
        """One look at the candidates; True to look again at once."""
        client = self.client
        with self._lock:
            if self._withdrawn or client.state != KazooState.CONNECTED:
                return False
            session, link, node = self._session, self._link, self._node
        if node is None:
            node = self._create_candidacy()
            with self._lock:
                if self._withdrawn or self._session != session:
                    # Withdrawn meanwhile, or the znode belongs to a session that died.
                    stale = True
                else:
                    stale = False
                    self._node = node
            if stale:
                self._delete_quietly(node)
                return False
        name = node.rsplit("/", 1)[1]
        children = client.get_children(self.path)
        if name not in candidates(children, self.label):
            with self._lock:
                if self._node == node:
                    self._set_leading(False, "candidate znode was deleted")
                    self._node = None
            return True
        before = predecessor(children, name, self.label)
        # The leader watches its own znode (deleted: no longer leading); the others watch
        # only their predecessor (deleted: maybe leading now).
        watched = node if before is None else f"{self.path}/{before}"
        if client.exists(watched, watch=self._worker.kick) is None:
            return True
        with self._lock:
            if self._node != node or self._session != session:
                return True
            if before is not None:
                self._set_leading(False, f"older candidate {before} exists")
                return False
            if self._link != link or client.state != KazooState.CONNECTED:
                return False  # SUSPENDED meanwhile: the next CONNECTED decides.
            self._set_leading(True, f"{name} is the lowest candidate")
        return False

    def _create_candidacy(self) -> str:
        """Our candidate znode: one this session already owns with our data (a create whose
        answer was lost to a dropped connection), or a new one."""
        client = self.client
        client.ensure_path(self.path)
        session_id = (client.client_id or (None,))[0]
        mine: list[str] = []
        for name in candidates(client.get_children(self.path), self.label):
            try:
                data, stat = client.get(f"{self.path}/{name}")
            except NoNodeError:
                continue
            if stat.ephemeralOwner == session_id and data == self.data:
                mine.append(name)
        if mine:
            for extra in mine[1:]:
                self._delete_quietly(f"{self.path}/{extra}")
            return f"{self.path}/{mine[0]}"
        created = client.create(
            f"{self.path}/{self.label}_", self.data, ephemeral=True, sequence=True
        )
        return cast(str, created)

    def _delete_quietly(self, node: str) -> None:
        """Delete ``node`` on a thread of its own that retries through connection losses until
        it is gone (or the client stops: then the session's end deletes it). Waits for it up
        to ``withdraw_timeout`` while connected; a withdrawn candidate left in place would keep
        every other contender waiting behind it for as long as this client lives."""
        client = self.client
        retry = KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0)

        def delete() -> None:
            try:
                retry(client.delete, node)
            except NoNodeError:
                pass
            except Exception as error:
                log.info("could not delete candidate %s: %r", node, error)

        thread = client.handler.spawn(delete)
        if client.state == KazooState.CONNECTED:
            thread.join(self.withdraw_timeout)


class ZooKeeperDetector:
    """ZooKeeperDetector follows the lowest candidate under ``path`` (see the module doc).

    ``client`` is a kazoo client (started or not); the caller owns it. The leader stays as last
    seen while the connection is down; it is looked up again when the connection returns.
    """

    def __init__(self, client: KazooClient, path: str, *, label: str = MASTER_INFO_LABEL) -> None:
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.label = label
        self._lock = threading.RLock()  # Listeners may call back (close) while notified.
        self._listeners: Listeners[LeaderInfo | None] = Listeners()
        self._worker = _SerialWorker(client, self._refresh, f"detector {self.path}")
        self._leader: LeaderInfo | None = None
        self._looked = False
        self._started = False
        self._closed = False

    @property
    def leader(self) -> LeaderInfo | None:
        """The leader as last seen, or None."""
        return self._leader

    def add_listener(self, listener: Callable[[LeaderInfo | None], None]) -> Callable[[], None]:
        """Call ``listener`` with each new leader (or None), on kazoo's threads."""
        return self._listeners.add(listener)

    def start(self) -> None:
        """Begin following (returns at once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.client.add_listener(self._on_state)
        if self.client.state == KazooState.CONNECTED:
            self._worker.kick()

    def close(self) -> None:
        """Stop following. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._worker.stop()
        self.client.remove_listener(self._on_state)

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            self._worker.kick()

    def _update(self, leader: LeaderInfo | None) -> None:
        with self._lock:
            if self._closed:
                return
            unchanged = (
                self._looked
                and (leader is None) == (self._leader is None)
                and (leader is None or leader.same_master(self._leader))
            )
            self._looked = True
            if unchanged:
                return
            self._leader = leader
            # Called under the lock so listeners see changes in order.
            log.info("leader of %s: %s", self.path, leader.grpc_address if leader else "none")
            self._listeners.call(leader)

    def _refresh(self) -> None:
        client = self.client
        for _ in range(20):
            if self._closed or client.state != KazooState.CONNECTED:
                return
            try:
                children = client.get_children(self.path, watch=self._worker.kick)
            except NoNodeError:
                # Watch for the path's creation; if it appeared meanwhile, look again.
                if client.exists(self.path, watch=self._worker.kick) is None:
                    self._update(None)
                    return
                continue
            ordered = candidates(children, self.label)
            if not ordered:
                self._update(None)
                return
            first = ordered[0]
            current = self._leader
            if current is not None and current.node == first:
                return
            try:
                data, _ = client.get(f"{self.path}/{first}")
            except NoNodeError:
                continue  # Gone already: the children watch fires too.
            try:
                leader = leader_from_json(data, first)
            except LeaderInfoError as error:
                log.error("leading candidate %s/%s is unusable: %s", self.path, first, error)
                self._update(None)
                return
            self._update(leader)
            return


# -- the registry's znode operations -----------------------------------------------------------


class KazooZnodeStore:
    """KazooZnodeStore: the znode operations the ZooKeeper registry needs, over kazoo.

    ``fence`` (a znode path, usually the leader's candidate znode) makes a write conditional on
    that znode existing, in the same transaction: once a master's session ends, none of its
    writes can land. Each call waits at most ``timeout`` seconds for ZooKeeper; a write that
    times out may still be applied later, with its compare-and-set intact.
    """

    def __init__(self, client: KazooClient, *, timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout

    def _wait(self, result: Any) -> Any:
        return result.get(timeout=self.timeout)

    def read(self, path: str) -> tuple[bytes, int] | None:
        """The znode's data and version, or None if it does not exist."""
        try:
            data, stat = self._wait(self.client.get_async(path))
        except NoNodeError:
            return None
        return bytes(data), int(stat.version)

    def children(self, path: str) -> list[str]:
        """The names of the znode's children ([] if it does not exist)."""
        try:
            return list(self._wait(self.client.get_children_async(path)))
        except NoNodeError:
            return []

    def create(self, path: str, data: bytes, *, fence: str | None = None) -> bool:
        """Create a persistent znode (and its parents); False if it exists or the fence is gone."""
        parent = path.rsplit("/", 1)[0]
        if parent:
            self._wait(self.client.ensure_path_async(parent))
        if fence is None:
            try:
                self._wait(self.client.create_async(path, data))
            except NodeExistsError:
                return False
            return True
        transaction = self.client.transaction()
        transaction.check(fence, -1)
        transaction.create(path, data)
        results = self._wait(transaction.commit_async())
        return not any(isinstance(r, Exception) for r in results)

    def replace(
        self, path: str, data: bytes, version: int, *, fence: str | None = None
    ) -> int | None:
        """Set the data if the znode is at ``version``; the new version, or None if it moved
        (or is gone, or the fence is)."""
        if fence is None:
            try:
                stat = self._wait(self.client.set_async(path, data, version))
            except (BadVersionError, NoNodeError):
                return None
            return int(stat.version)
        transaction = self.client.transaction()
        transaction.check(fence, -1)
        transaction.set_data(path, data, version)
        results = self._wait(transaction.commit_async())
        if any(isinstance(r, Exception) for r in results):
            return None
        return int(results[1].version)

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        """In one transaction: the fence exists, each ``checks`` znode is at its version, each
        ``creates`` znode is created (parents must exist), each ``sets`` znode is set if at its
        version. The new versions of ``sets``, or None if any part failed (nothing was done)."""
        transaction = self.client.transaction()
        if fence is not None:
            transaction.check(fence, -1)
        for path, version in checks:
            transaction.check(path, version)
        for path, data in creates:
            transaction.create(path, data)
        for path, data, version in sets:
            transaction.set_data(path, data, version)
        results = self._wait(transaction.commit_async())
        if any(isinstance(r, Exception) for r in results):
            return None
        return [int(stat.version) for stat in results[len(results) - len(sets) :]]

    def delete(self, path: str) -> None:
        """Delete the znode if it exists (it must have no children)."""
        with contextlib.suppress(NoNodeError):
            self._wait(self.client.delete_async(path))
