"""One two-agent local cluster for the batch framework's end-to-end tests (module scope)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emporion.local_cluster import LocalCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A master and two agents (two executors, so shuffles cross executors)."""
    with LocalCluster(agents=2, http_port=None) as running:
        yield running


@pytest.fixture
def master(cluster: LocalCluster) -> str:
    assert cluster.master_address is not None
    return cluster.master_address
