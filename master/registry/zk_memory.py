"""MemoryZnodeStore: the in-memory twin of ZooKeeper for the ZooKeeper registry's tests.

It keeps znodes in a dict with ZooKeeper's rules where the registry depends on them: versions
count writes from 0, compare-and-set, a fence checked atomically with the write, transactions
(all or nothing), parents made on create, no deleting a znode with children, and a request
size limit (ZooKeeper's ``jute.maxbuffer``) that raises instead of writing, as the real server
drops the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

__all__ = ["MemoryZnodeStore", "ZnodeTooLargeError"]


class ZnodeTooLargeError(Exception):
    """ZnodeTooLargeError: a request over the size limit (ZooKeeper would drop the connection)."""


class MemoryZnodeStore:
    """MemoryZnodeStore implements :class:`~master.registry.zookeeper.ZnodeStore` in memory.

    ``nodes`` maps each path to its data and version; ``requests`` counts write requests.
    """

    def __init__(self, max_request_bytes: int = 1024 * 1024 - 1) -> None:
        self.max_request_bytes = max_request_bytes
        self.nodes: dict[str, tuple[bytes, int]] = {}
        self.requests = 0
        self._lock = threading.Lock()

    def _check_size(self, path: str, data: bytes) -> None:
        self.requests += 1
        if len(path) + len(data) + 64 > self.max_request_bytes:
            raise ZnodeTooLargeError(f"{len(data)} bytes for {path}: over the request limit")

    def read(self, path: str) -> tuple[bytes, int] | None:
        """The znode's data and version, or None."""
        with self._lock:
            return self.nodes.get(path)

    def children(self, path: str) -> list[str]:
        """Names of the znode's children."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            return sorted(
                p[len(prefix) :]
                for p in self.nodes
                if p.startswith(prefix) and "/" not in p[len(prefix) :]
            )

    def create(self, path: str, data: bytes, *, fence: str | None = None) -> bool:
        """Create the znode and its parents; False if it exists or the fence does not."""
        with self._lock:
            self._check_size(path, data)
            if path in self.nodes or (fence is not None and fence not in self.nodes):
                return False
            parts = path.split("/")
            for end in range(2, len(parts)):
                self.nodes.setdefault("/".join(parts[:end]), (b"", 0))
            self.nodes[path] = (data, 0)
            return True

    def replace(
        self, path: str, data: bytes, version: int, *, fence: str | None = None
    ) -> int | None:
        """Set the data if at ``version``; the new version or None."""
        with self._lock:
            self._check_size(path, data)
            current = self.nodes.get(path)
            if current is None or current[1] != version:
                return None
            if fence is not None and fence not in self.nodes:
                return None
            self.nodes[path] = (data, version + 1)
            return version + 1

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        """Checks, creates and sets in one transaction (parents must exist); the new versions
        of ``sets``, or None (nothing done) if a check, create or set fails or the fence is
        gone."""
        with self._lock:
            self._check_size("", b"".join([d for _, d in creates] + [d for _, d, _ in sets]))
            if fence is not None and fence not in self.nodes:
                return None
            for path, version in checks:
                if self.nodes.get(path, (b"", -1))[1] != version:
                    return None
            for path, _ in creates:
                if path in self.nodes or path.rsplit("/", 1)[0] not in self.nodes:
                    return None
            for path, _, version in sets:
                if self.nodes.get(path, (b"", -1))[1] != version:
                    return None
            for path, data in creates:
                self.nodes[path] = (data, 0)
            for path, data, version in sets:
                self.nodes[path] = (data, version + 1)
            return [version + 1 for _, _, version in sets]

    def delete(self, path: str) -> None:
        """Delete the znode if it exists; ValueError if it has children."""
        with self._lock:
            prefix = path + "/"
            if any(p.startswith(prefix) for p in self.nodes):
                raise ValueError(f"znode {path} has children")
            self.nodes.pop(path, None)
