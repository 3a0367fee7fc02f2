"""One real local cluster and one BatchContext for every property test of the batch framework.

Starting a cluster and a context costs seconds; a job on them a fraction of one. So the
whole directory shares one session-scoped context (2 agents, so that shuffles cross executors),
and each hypothesis test runs a few examples (``EMPORION_BATCH_EXAMPLES``, default
:data:`~tests.property.batch.strategies.EXAMPLES`; the slow test in ``test_deep.py`` runs the
directory again with many more).

``EMPORION_BATCH_ENGINE=pyspark`` runs the same properties against PySpark's ``local[2]``
instead (``pip install pyspark``): they state PySpark's semantics, and this checks that they do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

from emporion.local_cluster import LocalCluster

if TYPE_CHECKING:
    from examples.batch import BatchContext


@pytest.fixture(scope="session")
def sc() -> Iterator[BatchContext]:
    """A BatchContext on a 2-agent local cluster (or PySpark's, see the module docstring)."""
    if os.environ.get("EMPORION_BATCH_ENGINE") == "pyspark":
        os.environ["PYSPARK_PYTHON"] = sys.executable
        pyspark: Any = pytest.importorskip("pyspark")
        spark = pyspark.SparkContext("local[2]", "properties")
        spark.setLogLevel("ERROR")
        try:
            yield cast("BatchContext", spark)
        finally:
            spark.stop()
        return
    from examples.batch import BatchContext

    with (
        LocalCluster(agents=2, http_port=None) as cluster,
        BatchContext(cluster.master_address or "", app_name="properties", progress=False) as ctx,
    ):
        yield ctx
