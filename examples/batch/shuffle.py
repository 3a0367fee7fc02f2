"""The shuffle's file format, its writer (map side), and its block reader (reduce side).

One map task writes two files into its executor's block directory::

    shuffle_<shuffle>_<map>_<tag>.data    block 0 | block 1 | ... | block R-1
    shuffle_<shuffle>_<map>_<tag>.index   R+1 offsets (unsigned 64-bit, big-endian) into .data

``tag`` names the task attempt, so two attempts of one map task (a retry, a speculative copy)
never write the same file. A block is the records of one reduce partition, as frames::

    frame = length (4 bytes, big-endian) | zlib level 1 of pickle protocol 5 of a list of records

Batches of records are pickled together (a pickle call per record costs more than the record),
and level 1 compresses text-like data about 3x at several hundred MB/s. A reduce task reads its
block from each map output: from the file when the output is on its own executor, else with an
HTTP GET from that executor's block server (``/shuffle/<shuffle>/<map>/<tag>/<reduce>``),
executor to executor, never through the master. A block that cannot be fetched raises
:class:`FetchFailedError`, which makes the driver run the lost map tasks again.
"""

from __future__ import annotations

import http.client
import os
import pickle
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from examples.batch.errors import FetchFailedError
from examples.batch.partitioner import Aggregator, HashPartitioner, Partitioner, portable_hash

__all__ = [
    "BlockFetcher",
    "MapOutput",
    "decode_frames",
    "encode_frames",
    "read_local_block",
    "shuffle_paths",
    "write_map_output",
]

FRAME_RECORDS = 20_000
"""Records per frame: big enough that pickling is batched, small enough to bound memory."""
_LEN = struct.Struct(">I")


class MapOutput(NamedTuple):
    """Where one map task's output lives: what the driver tells reduce tasks."""

    executor_id: str
    address: str
    tag: str
    sizes: tuple[int, ...]


def shuffle_paths(block_dir: str, shuffle_id: int, map_index: int, tag: str) -> tuple[str, str]:
    """The .data and .index paths of one map output."""
    base = os.path.join(block_dir, f"shuffle_{shuffle_id}_{map_index}_{tag}")
    return base + ".data", base + ".index"


def encode_frames(records: list[Any]) -> bytes:
    """Records as frames of :data:`FRAME_RECORDS` each."""
    parts: list[bytes] = []
    for start in range(0, len(records), FRAME_RECORDS):
        body = zlib.compress(pickle.dumps(records[start : start + FRAME_RECORDS], 5), 1)
        parts.append(_LEN.pack(len(body)))
        parts.append(body)
    return b"".join(parts)


def decode_frames(data: bytes | memoryview) -> Iterator[list[Any]]:
    """The record lists of the frames in ``data``."""
    view = memoryview(data)
    pos, end = 0, len(view)
    while pos < end:
        (length,) = _LEN.unpack_from(view, pos)
        pos += 4
        yield pickle.loads(zlib.decompress(view[pos : pos + length]))
        pos += length


def write_map_output(
    records: Iterable[Any],
    *,
    partitioner: Partitioner,
    aggregator: Aggregator | None,
    block_dir: str,
    shuffle_id: int,
    map_index: int,
    tag: str,
) -> tuple[int, ...]:
    """Partition (and, with an aggregator, combine) ``(k, v)`` records; write; return sizes."""
    n = partitioner.num_partitions
    bucket_of = partitioner.bucket_function()
    buckets: list[list[Any]] = [[] for _ in range(n)]
    if aggregator is not None:
        items: Iterable[Any] = aggregator.combine_values(records).items()
    else:
        items = records
    if n == 1:
        buckets[0] = list(items)
    elif isinstance(partitioner, HashPartitioner) and partitioner.partition_func is portable_hash:
        appends = [bucket.append for bucket in buckets]
        fast = (str, int, bytes, float)
        for kv in items:  # bucket_function() inlined: one Python call less per record.
            key = kv[0]
            appends[(hash(key) if type(key) in fast else portable_hash(key)) % n](kv)
    else:
        appends = [bucket.append for bucket in buckets]
        for kv in items:
            appends[bucket_of(kv[0])](kv)
    data_path, index_path = shuffle_paths(block_dir, shuffle_id, map_index, tag)
    offsets = [0]
    with open(data_path + ".tmp", "wb") as out:
        for bucket in buckets:
            if bucket:
                out.write(encode_frames(bucket))
            offsets.append(out.tell())
    with open(index_path + ".tmp", "wb") as out:
        out.write(struct.pack(f">{n + 1}Q", *offsets))
    os.replace(data_path + ".tmp", data_path)
    os.replace(index_path + ".tmp", index_path)  # The index last: it marks the output complete.
    return tuple(offsets[i + 1] - offsets[i] for i in range(n))


def read_local_block(
    block_dir: str, shuffle_id: int, map_index: int, tag: str, reduce_id: int
) -> bytes:
    """One reduce partition's block of a map output in this executor's block directory."""
    data_path, index_path = shuffle_paths(block_dir, shuffle_id, map_index, tag)
    with open(index_path, "rb") as index:
        index.seek(8 * reduce_id)
        start, end = struct.unpack(">2Q", index.read(16))
    with open(data_path, "rb") as data:
        data.seek(start)
        return data.read(end - start)


class BlockFetcher:
    """Fetches shuffle blocks, keeping one HTTP connection per remote executor."""

    def __init__(self, executor_id: str, block_dir: str) -> None:
        self.executor_id = executor_id
        self.block_dir = block_dir
        self._connections: dict[str, http.client.HTTPConnection] = {}
        self.bytes_fetched = 0

    def fetch(self, shuffle_id: int, map_index: int, where: MapOutput, reduce_id: int) -> bytes:
        """The block, from the file if it is ours, else from its executor's server."""
        if where.executor_id == self.executor_id:
            try:
                return read_local_block(self.block_dir, shuffle_id, map_index, where.tag, reduce_id)
            except OSError as error:
                raise FetchFailedError(
                    shuffle_id, map_index, where.executor_id, where.address, str(error)
                ) from None
        path = f"/shuffle/{shuffle_id}/{map_index}/{where.tag}/{reduce_id}"
        for attempt in range(2):  # A kept-alive connection the server closed: retry once.
            connection = self._connections.get(where.address)
            if connection is None:
                host, port = where.address.rsplit(":", 1)
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                self._connections[where.address] = connection
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                del self._connections[where.address]
                if attempt == 0 and isinstance(
                    error, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                ):
                    continue
                raise FetchFailedError(
                    shuffle_id, map_index, where.executor_id, where.address, str(error)
                ) from None
            if response.status != 200:
                raise FetchFailedError(
                    shuffle_id,
                    map_index,
                    where.executor_id,
                    where.address,
                    f"HTTP {response.status}: {body[:200]!r}",
                )
            self.bytes_fetched += len(body)
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
