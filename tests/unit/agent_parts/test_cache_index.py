"""CacheIndex: the fetcher cache's LRU bookkeeping under a byte capacity."""

from __future__ import annotations

import pytest

from agent.fetcher import CacheIndex, cache_key


def test_admit_evicts_least_recently_used_unpinned_entries() -> None:
    index = CacheIndex(capacity=100)
    assert index.admit("a", 40) == (True, [])
    assert index.admit("b", 40) == (True, [])
    assert index.pin("a")  # a becomes most recently used
    index.release("a")
    assert index.admit("c", 40) == (True, ["b"])
    assert index.keys() == ["a", "c"]
    assert index.used == 80
    index.validate()


def test_pinned_entries_are_never_evicted() -> None:
    index = CacheIndex(capacity=100)
    index.admit("a", 60)
    assert index.pin("a")
    assert index.admit("b", 60) == (False, [])
    assert "b" not in index
    assert index.keys() == ["a"]
    index.release("a")
    assert index.admit("b", 60) == (True, ["a"])
    index.validate()


def test_a_refused_admission_evicts_nothing() -> None:
    index = CacheIndex(capacity=100)
    index.admit("a", 30)
    index.admit("b", 30)
    index.pin("b")
    # Evicting a frees only 30 of the 80 needed beyond the 40 left: refuse, keep a.
    assert index.admit("c", 80) == (False, [])
    assert index.keys() == ["a", "b"]


def test_larger_than_capacity_is_refused_and_zero_fits() -> None:
    index = CacheIndex(capacity=10)
    assert index.admit("huge", 11) == (False, [])
    assert index.admit("empty", 0) == (True, [])


def test_lowered_capacity_applies_at_the_next_admission() -> None:
    index = CacheIndex(capacity=100)
    index.admit("a", 50)
    index.admit("b", 50)
    index.capacity = 60
    index.validate()
    assert index.admit("c", 10) == (True, ["a"])
    assert index.used == 60


def test_misuse_is_refused() -> None:
    index = CacheIndex(capacity=10)
    index.admit("a", 1)
    with pytest.raises(ValueError, match="already present"):
        index.admit("a", 1)
    with pytest.raises(ValueError, match="released more often than pinned"):
        index.release("a")
    with pytest.raises(ValueError, match="size must be >= 0"):
        index.admit("b", -1)
    assert not index.pin("missing")
    assert index.pins("a") == 0


def test_cache_keys_differ_by_user_and_uri() -> None:
    keys = {
        cache_key("http://h/a", None),
        cache_key("http://h/a", "alice"),
        cache_key("http://h/b", None),
    }
    assert len(keys) == 3
    assert cache_key("http://h/a", None) == cache_key("http://h/a", "")
    assert all(len(k) == 64 for k in keys)
