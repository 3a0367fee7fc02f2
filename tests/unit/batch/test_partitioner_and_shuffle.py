"""Partitioners, the shuffle file format and text splits, on local files only."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from examples.batch import rdds
from examples.batch.errors import FetchFailedError
from examples.batch.partitioner import (
    Aggregator,
    HashPartitioner,
    RangePartitioner,
    portable_hash,
)
from examples.batch.rdds import _lines
from examples.batch.shuffle import (
    FRAME_RECORDS,
    BlockFetcher,
    MapOutput,
    decode_frames,
    encode_frames,
    read_local_block,
    shuffle_paths,
    write_map_output,
)


def test_portable_hash_is_stable_for_none_and_tuples() -> None:
    assert portable_hash(None) == 0
    assert portable_hash((None, 1)) == portable_hash((None, 1))
    assert portable_hash((1, (2, None))) != portable_hash((1, (2, 3)))


def test_hash_partitioner_fast_path_agrees_with_portable_hash() -> None:
    partitioner = HashPartitioner(7)
    bucket = partitioner.bucket_function()
    for key in ["a", "bb", 3, -12, 2.5, b"x", (1, "a"), None, ("x", None)]:
        assert bucket(key) == portable_hash(key) % 7 == partitioner(key)
        assert 0 <= bucket(key) < 7
    assert HashPartitioner(7) == HashPartitioner(7)
    assert HashPartitioner(7) != HashPartitioner(8)
    assert HashPartitioner(7) != HashPartitioner(7, lambda k: 0)
    with pytest.raises(ValueError, match="numPartitions must be a positive int, not 0"):
        HashPartitioner(0)


def test_range_partitioner_sends_keys_to_sorted_ranges() -> None:
    partitioner = RangePartitioner([10, 20], True, lambda k: k)
    assert [partitioner(k) for k in (-5, 10, 11, 20, 25)] == [0, 0, 1, 1, 2]
    descending = RangePartitioner([10, 20], False, lambda k: k)
    assert [descending(k) for k in (-5, 15, 25)] == [2, 1, 0]
    assert RangePartitioner([], True, lambda k: k, 4).num_partitions == 4


def test_bounds_weigh_samples_by_the_records_they_stand_for() -> None:
    # Partition A: 1000 records sampled by keys 0..9 (weight 100); B: 10 records, keys 100..109.
    samples = [(100.0, k) for k in range(10)] + [(1.0, k) for k in range(100, 110)]
    bounds = RangePartitioner.bounds_from_samples(sorted(samples, key=lambda s: s[1]), 2)
    # Half the weight is reached at key 5; half the samples (unweighted) would say key 9.
    assert bounds == [5]
    assert RangePartitioner.bounds_from_samples([], 3) == []


def test_aggregator_combines_values_then_combiners() -> None:
    add = Aggregator(lambda v: [v], lambda c, v: [*c, v], lambda a, b: a + b)
    combined = add.combine_values([("a", 1), ("b", 2), ("a", 3)])
    assert combined == {"a": [1, 3], "b": [2]}
    assert add.combine_combiners([("a", [4])], combined) == {"a": [1, 3, 4], "b": [2]}


def test_frames_round_trip_across_frame_boundaries() -> None:
    records = [(i, str(i)) for i in range(FRAME_RECORDS * 2 + 5)]
    data = encode_frames(records)
    frames = list(decode_frames(data))
    assert len(frames) == 3
    assert [r for frame in frames for r in frame] == records
    assert encode_frames([]) == b""


def test_map_output_files_hold_each_reduce_partition_in_its_block(tmp_path: Path) -> None:
    partitioner = HashPartitioner(4)
    records = [(f"k{i % 9}", i) for i in range(500)]
    sizes = write_map_output(
        records, partitioner=partitioner, aggregator=None, block_dir=str(tmp_path),
        shuffle_id=3, map_index=1, tag="t1",
    )  # fmt: skip
    data_path, index_path = shuffle_paths(str(tmp_path), 3, 1, "t1")
    offsets = struct.unpack(">5Q", Path(index_path).read_bytes())
    assert [offsets[i + 1] - offsets[i] for i in range(4)] == list(sizes)
    assert offsets[-1] == Path(data_path).stat().st_size
    for reduce_id in range(4):
        block = read_local_block(str(tmp_path), 3, 1, "t1", reduce_id)
        got = [r for frame in decode_frames(block) for r in frame]
        assert got == [r for r in records if partitioner(r[0]) == reduce_id]
        assert (len(block) == 0) == (sizes[reduce_id] == 0)
    assert not list(tmp_path.glob("*.tmp"))


def test_map_side_combine_writes_one_record_per_key(tmp_path: Path) -> None:
    plus = Aggregator(lambda v: v, lambda a, b: a + b, lambda a, b: a + b)
    sizes = write_map_output(
        [("a", 1)] * 100 + [("b", 2)] * 50, partitioner=HashPartitioner(1), aggregator=plus,
        block_dir=str(tmp_path), shuffle_id=0, map_index=0, tag="x",
    )  # fmt: skip
    block = read_local_block(str(tmp_path), 0, 0, "x", 0)
    assert sorted(r for frame in decode_frames(block) for r in frame) == [("a", 100), ("b", 100)]
    assert sizes == (len(block),)


def test_fetcher_reads_its_own_outputs_from_disk_and_reports_lost_ones(tmp_path: Path) -> None:
    write_map_output(
        [(1, 1)], partitioner=HashPartitioner(2), aggregator=None, block_dir=str(tmp_path),
        shuffle_id=0, map_index=0, tag="t",
    )  # fmt: skip
    fetcher = BlockFetcher("me", str(tmp_path))
    mine = MapOutput("me", "127.0.0.1:1", "t", (0, 10))
    assert [r for f in decode_frames(fetcher.fetch(0, 0, mine, 1)) for r in f] == [(1, 1)]
    with pytest.raises(FetchFailedError, match="executor me"):
        fetcher.fetch(0, 0, mine._replace(tag="gone"), 1)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    remote = MapOutput("other", f"127.0.0.1:{port}", "t", (0, 10))
    with pytest.raises(FetchFailedError, match="shuffle 0 map 0: fetch from executor other"):
        fetcher.fetch(0, 0, remote, 1)


@pytest.mark.parametrize("chunk", [5, 4 * 1024 * 1024])
def test_text_splits_give_every_line_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(rdds, "READ_CHUNK", chunk)
    lines = [f"line {i}" + "x" * (i % 17) for i in range(300)]
    path = tmp_path / "t.txt"
    path.write_text("\r\n".join(lines[:10]) + "\r\n" + "\n".join(lines[10:]))
    size = path.stat().st_size
    for split in (1, 7, 64, 1000, size):
        got: list[str] = []
        for start in range(0, size, split):
            got.extend(_lines(str(path), start, min(size, start + split)))
        assert got == lines, split
