"""FilterExpiries counts its dead entries, so dropping filters never scans the heap, and it
compacts once the dead outnumber the live."""

from __future__ import annotations

from master.allocator.filters import FilterExpiries, RefuseFilter
from protos.resources import Resources


def _filters(count: int) -> list[RefuseFilter]:
    return [
        RefuseFilter("f", "r", f"a{i}", Resources.parse("cpus:1"), 0.0, float(i + 1))
        for i in range(count)
    ]


def test_dead_entries_are_counted_and_compacted_once_they_outnumber_the_live() -> None:
    heap = FilterExpiries()
    filters = _filters(10)
    for refuse_filter in filters:
        heap.push(refuse_filter)
    for refuse_filter in filters[:5]:
        heap.kill(refuse_filter)
        heap.kill(refuse_filter)  # Twice is once.
    heap.compact()
    assert (len(heap), heap.dead()) == (10, 5)  # Not more dead than live yet.
    heap.kill(filters[5])
    heap.compact()
    assert (len(heap), heap.dead()) == (4, 0)
    assert heap.live() == filters[6:]


def test_expired_entries_leave_the_heap_dead_or_alive() -> None:
    heap = FilterExpiries()
    filters = _filters(6)
    for refuse_filter in filters:
        heap.push(refuse_filter)
    heap.kill(filters[0])
    heap.kill(filters[4])
    due = heap.pop_expired(3.5)  # Expiries 1, 2, 3: the first one was dropped already.
    assert due == filters[1:3]
    assert not any(f.live for f in due)  # The caller drops them from their framework.
    assert (len(heap), heap.dead()) == (3, 1)
    heap.kill(due[0])  # Dropping a popped filter counts nothing.
    assert heap.dead() == 1
    assert heap.live() == [filters[3], filters[5]]
