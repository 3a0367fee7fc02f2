"""``GET /metrics`` on the agent: its containers and their usage, in Prometheus's text format.

A collector reads each container's usage when scraped (``Container.stats()``: the cgroup's
``cpu.stat`` and ``memory.current`` under cgroups v2, cpuacct and memory under v1), so nothing
is counted between scrapes. Per container, labelled by ``container_id``, ``framework_id`` and
``executor_id``:

* ``emporion_agent_container_cpu_usage_seconds_total`` and ``..._cpu_throttled_seconds_total``;
* ``emporion_agent_container_memory_usage_bytes``, ``..._memory_peak_bytes``,
  ``..._memory_limit_bytes``; ``emporion_agent_container_oom_kills_total``;
* ``emporion_agent_container_pids``;

and ``emporion_agent_containers``, how many containers the agent runs. A figure the isolation
cannot measure (the posix fallback measures none) is left out, not reported as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from agent.isolation.state import ContainerStats

__all__ = ["AgentCollector", "agent_metrics_router"]

_LABELS = ["container_id", "framework_id", "executor_id"]


class Measurable(Protocol):
    """Measurable is what the collector needs of a container."""

    def stats(self) -> ContainerStats:
        """The container's usage now."""
        ...


Containers = Callable[[], Mapping[str, Measurable]]
"""The running containers by id."""

Owners = Callable[[str], tuple[str, str] | None]
"""A container's (framework id, executor id), if known."""


class AgentCollector(Collector):
    """AgentCollector reads the agent's containers at each scrape (module docstring)."""

    def __init__(self, containers: Containers, owners: Owners) -> None:
        self._containers = containers
        self._owners = owners

    def collect(self) -> Iterator[Metric]:
        """The metrics of every container running now."""
        containers = dict(self._containers())
        yield GaugeMetricFamily(
            "emporion_agent_containers", "Containers the agent runs", value=len(containers)
        )
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "cpu": CounterMetricFamily(
                "emporion_agent_container_cpu_usage_seconds",
                "CPU time used by the container",
                labels=_LABELS,
            ),
            "throttled": CounterMetricFamily(
                "emporion_agent_container_cpu_throttled_seconds",
                "Time the container was throttled by its CPU quota",
                labels=_LABELS,
            ),
            "mem": GaugeMetricFamily(
                "emporion_agent_container_memory_usage_bytes",
                "Memory the container uses",
                labels=_LABELS,
            ),
            "peak": GaugeMetricFamily(
                "emporion_agent_container_memory_peak_bytes",
                "The most memory the container used",
                labels=_LABELS,
            ),
            "limit": GaugeMetricFamily(
                "emporion_agent_container_memory_limit_bytes",
                "The container's memory limit",
                labels=_LABELS,
            ),
            "oom": CounterMetricFamily(
                "emporion_agent_container_oom_kills",
                "Processes of the container killed for want of memory",
                labels=_LABELS,
            ),
            "pids": GaugeMetricFamily(
                "emporion_agent_container_pids", "Processes in the container", labels=_LABELS
            ),
        }
        for container_id in sorted(containers):
            try:
                stats = containers[container_id].stats()
            except OSError:  # It ended while being read: its cgroup is gone.
                continue
            owner = self._owners(container_id) or ("", "")
            labels = [container_id, *owner]
            for key, value in (
                ("cpu", stats.cpu_usage_s),
                ("throttled", stats.cpu_throttled_s),
                ("mem", stats.mem_usage_bytes),
                ("peak", stats.mem_peak_bytes),
                ("limit", stats.mem_limit_bytes),
                ("oom", stats.oom_kills),
                ("pids", stats.pids_current),
            ):
                if value is not None:
                    families[key].add_metric(labels, float(value))
        yield from families.values()


def agent_metrics_router(containers: Containers, owners: Owners) -> APIRouter:
    """``GET /metrics`` over a registry holding only an :class:`AgentCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(containers, owners))
    router = APIRouter()

    @router.get("/metrics")
    async def metrics() -> Response:
        """The agent's metrics in Prometheus's text exposition format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
