"""The agent's ``GET /metrics`` (Prometheus): its containers and their usage, read at scrape.

Containers here are stand-ins that report fixed ContainerStats (reading them from cgroups is the
isolation's, tested with real cgroups in tests/unit/isolation); what is checked is the mapping
to metrics: labels, units, figures the isolation cannot measure left out, a container that ends
while being read skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from agent.isolation.state import ContainerStats
from agent.runtime.prometheus import agent_metrics_router


@dataclass
class Fixed:
    """A container whose usage is ``usage`` (or gone, if None)."""

    usage: ContainerStats | None

    def stats(self) -> ContainerStats:
        if self.usage is None:
            raise FileNotFoundError("cgroup removed")
        return self.usage


def scrape(app: FastAPI) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async def run() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            response = await client.get("/metrics")
            assert response.status_code == 200
            return response.text

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(asyncio.run(run()))
        for s in family.samples
    }


def test_containers_and_their_usage() -> None:
    containers = {
        "c1": Fixed(
            ContainerStats(
                cpu_usage_s=1.5,
                cpu_throttled_s=0.25,
                mem_usage_bytes=1024,
                mem_peak_bytes=2048,
                mem_limit_bytes=4096,
                oom_kills=0,
                pids_current=3,
            )
        ),
        "c2": Fixed(ContainerStats()),  # posix: nothing measurable
        "c3": Fixed(None),  # ended while being read
    }
    owners = {"c1": ("F", "E")}
    app = FastAPI()
    app.include_router(agent_metrics_router(lambda: containers, owners.get))
    samples = scrape(app)
    labels = (("container_id", "c1"), ("executor_id", "E"), ("framework_id", "F"))
    assert samples[("emporion_agent_containers", ())] == 3.0
    assert samples[("emporion_agent_container_cpu_usage_seconds_total", labels)] == 1.5
    assert samples[("emporion_agent_container_cpu_throttled_seconds_total", labels)] == 0.25
    assert samples[("emporion_agent_container_memory_usage_bytes", labels)] == 1024.0
    assert samples[("emporion_agent_container_memory_peak_bytes", labels)] == 2048.0
    assert samples[("emporion_agent_container_memory_limit_bytes", labels)] == 4096.0
    assert samples[("emporion_agent_container_oom_kills_total", labels)] == 0.0
    assert samples[("emporion_agent_container_pids", labels)] == 3.0
    assert not [key for key in samples if ("container_id", "c2") in key[1]]
    assert not [key for key in samples if ("container_id", "c3") in key[1]]
