"""Data, partition counts and settings shared by the batch framework's property tests.

Keys come from small ranges so that keys repeat (grouping, joining and combining have work to
do) and are ints or strings: string keys must hash alike in every worker process of every
executor, or a shuffle splits one key over two partitions. Partition counts run from 1 to 6,
more than the records at times, so empty partitions occur.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("EMPORION_BATCH_EXAMPLES", "4"))
"""Examples per property: few by default (each is a job on a real cluster)."""

BATCH = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

values = st.integers(-1000, 1000)
ints = st.lists(values, max_size=40)
slices = st.integers(1, 6)
keys = st.one_of(st.integers(-4, 6), st.sampled_from(["a", "b", "ç", "key", ""]))
int_keys = st.integers(-4, 6)
pairs = st.lists(st.tuples(keys, values), max_size=40)
int_pairs = st.lists(st.tuples(int_keys, values), max_size=40)


def by_key(records: Iterable[tuple[Any, int]]) -> dict[Any, list[int]]:
    """Values grouped by key, each list sorted (the order a shuffle keeps is unspecified)."""
    groups: dict[Any, list[int]] = {}
    for key, value in records:
        groups.setdefault(key, []).append(value)
    return {key: sorted(group) for key, group in groups.items()}


def multiset(records: Iterable[Any]) -> list[Any]:
    """``records`` in a canonical order, for comparing results whose order is unspecified."""
    return sorted(records, key=repr)


def storage_levels(sc: object) -> Any:
    """The ``StorageLevel`` class of ``sc``'s engine (this framework's, or PySpark's)."""
    engine = "pyspark" if type(sc).__module__.startswith("pyspark") else "examples.batch"
    return importlib.import_module(engine).StorageLevel
