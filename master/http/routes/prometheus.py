"""``GET /metrics``: the master's metrics in Prometheus's text format (prometheus-client).

A custom collector reads the state at scrape time, so metrics cost nothing between scrapes:

* every ``/metrics/snapshot`` figure as a gauge, ``master/cpus_used`` becoming
  ``emporion_master_cpus_used`` (a master that does not lead reports only ``elected`` 0 and its
  uptime, as in the snapshot);
* ``emporion_master_task_terminal_total{state,source,reason}``: tasks that ended, by how;
* histograms of allocation-cycle time (``emporion_master_allocation_cycle_seconds``), launch
  latency (ACCEPT to TASK_RUNNING, ``emporion_master_task_launch_latency_seconds``) and offer
  latency (offered to accepted or declined, ``emporion_master_offer_latency_seconds``), from the
  buckets the master's history fills (:class:`master.core.history.Buckets`);
* per role: ``emporion_master_role_{allocated,offered,reserved,quota_guarantee,quota_limit}``
  ``{role,resource}`` and ``emporion_master_role_weight{role}``.

Answered by every master, leading or not (a scraper polls each one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from master.core import Master, metrics_snapshot, roles_snapshot
from master.core.history import Buckets
from master.http.view import MasterView
from protos.v1 import mesos_pb2

__all__ = ["MasterCollector", "metric_name", "prometheus_router"]

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(snapshot_name: str) -> str:
    """The Prometheus name of a ``/metrics/snapshot`` name: ``emporion_`` + it, with ``/`` and
    other characters Prometheus refuses as ``_``."""
    return "emporion_" + _UNSAFE.sub("_", snapshot_name)


def _histogram(name: str, documentation: str, buckets: Buckets) -> HistogramMetricFamily:
    cumulative = [(_le(bound), count) for bound, count in buckets.cumulative()]
    return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=buckets.sum)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class MasterCollector(Collector):
    """MasterCollector turns the master ``view`` describes into metrics at each scrape."""

    def __init__(self, view: MasterView, clock: Callable[[], float]) -> None:
        self._view = view
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """Every metric of the module docstring (the snapshot only, on a follower)."""
        master = self._view.leading_master()
        snapshot = metrics_snapshot(master, now=self._clock(), start_time=self._view.start_time)
        for name, value in snapshot.items():
            yield GaugeMetricFamily(metric_name(name), f"Mesos's {name}", value=value)
        if master is not None:
            yield from self._leading(master)

    def _leading(self, master: Master) -> Iterator[Metric]:
        history = master.state.history
        ended = CounterMetricFamily(
            "emporion_master_task_terminal",
            "Tasks that reached a terminal state since this master took the lead",
            labels=["state", "source", "reason"],
        )
        for (state, source, reason), count in sorted(
            history.reasons.items(), key=lambda item: tuple(-1 if v is None else v for v in item[0])
        ):
            ended.add_metric(
                [
                    mesos_pb2.TaskState.Name(state),  # type: ignore[arg-type]
                    "" if source is None else mesos_pb2.TaskStatus.Source.Name(source),  # type: ignore[arg-type]
                    "" if reason is None else mesos_pb2.TaskStatus.Reason.Name(reason),  # type: ignore[arg-type]
                ],
                count,
            )
        yield ended
        yield _histogram(
            "emporion_master_allocation_cycle_seconds",
            "Time of one allocation cycle (offers made from it included)",
            history.allocation_cycles,
        )
        yield _histogram(
            "emporion_master_task_launch_latency_seconds",
            "Time from a task's launch (ACCEPT) to its first TASK_RUNNING at the master",
            history.launch_latency,
        )
        yield _histogram(
            "emporion_master_offer_latency_seconds",
            "Time an offer was outstanding until its framework accepted or declined it",
            history.offer_latency,
        )
        yield from self._roles(master)

    def _roles(self, master: Master) -> Iterator[Metric]:
        families = {
            kind: GaugeMetricFamily(
                f"emporion_master_role_{kind}",
                f"Per role: the {kind.replace('_', ' ')} amount of each resource",
                labels=["role", "resource"],
            )
            for kind in ("allocated", "offered", "reserved", "quota_guarantee", "quota_limit")
        }
        weight = GaugeMetricFamily(
            "emporion_master_role_weight", "Per role: its fair-sharing weight", labels=["role"]
        )
        for role in roles_snapshot(master)["roles"]:
            name = role["name"]
            weight.add_metric([name], role["weight"])
            for kind in ("allocated", "offered", "reserved"):
                for resource, amount in role[kind].items():
                    families[kind].add_metric([name, resource], amount)
            for kind, key in (("quota_guarantee", "guarantee"), ("quota_limit", "limit")):
                for resource, amount in role["quota"][key].items():
                    families[kind].add_metric([name, resource], amount)
        yield weight
        yield from families.values()


def prometheus_router(view: MasterView, clock: Callable[[], float]) -> APIRouter:
    """``GET /metrics`` over a registry holding only :class:`MasterCollector` (no process-wide
    default registry: two masters in one process, as in tests, do not mix)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MasterCollector(view, clock))
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics")
    async def prometheus() -> Response:
        """The metrics in Prometheus's text exposition format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
