"""The web UI at scale: page times and sizes, and what live viewers cost the master.

``python -m bench.ui --agents N --tasks M [--viewers 10] [--seconds 10]`` starts a master in its
own process, registers N emulated agents (:class:`emporion.testing.AgentEmulator`, in this
process, mode ``run``: tasks run until told otherwise) sized so that M small tasks fill them,
and a framework (``bench.launch_throughput``'s) that launches the M tasks. Then Debian's
chromium (started here, driven through Playwright over CDP) measures:

* ``overview_usable_s`` / ``tasks_usable_s`` (and ``_warm_s``, the second load, assets cached):
  from navigation start until the page is usable: the overview's agents table and its four
  uPlot charts drawn; the tasks page's first page of rows;
* ``*_bytes``: what each page transferred (document + assets, from the Resource Timing API)
  and its document alone (``*_document_bytes``).

Then churn: C more emulated agents in mode ``finish`` and a second framework keep tasks
starting and finishing as fast as the master takes them. Over ``--seconds`` with no UI open,
then with ``--viewers`` pages live (half overview, half tasks page), it reads the master's CPU
time (``/proc``) and ``master/tasks_finished``, and reports ``updates_per_s`` (two status
updates, RUNNING and FINISHED, per finished task), ``master_cpu_no_ui`` and
``master_cpu_with_ui`` (cores busy), and ``cpu_s_per_viewer_per_1000_updates``: the master's
extra CPU seconds per open UI per 1,000 task updates. One JSON object is printed.

Every process started here (master, chromium) dies with this one however it ends
(:mod:`bench._common`); Playwright's own driver exits when its pipe to this process closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc.aio
import httpx

from bench._common import emit, kill_children_on_signals, machine, rounded, start_child
from bench.launch_throughput import BenchFramework, Totals, process_cpu_seconds
from emporion.testing import AgentEmulator
from protos.resources import Resources

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
TASK_RESOURCES = "cpus:0.01;mem:1"
_MASTER_LINE = re.compile(r"listening on (\S+) \(http (\S+)\)")
_DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")
_PAGE_BYTES = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const assets = performance.getEntriesByType('resource')
    .filter(r => !r.name.includes('/ui/events'))
    .reduce((sum, r) => sum + r.transferSize, 0);
  return {document: nav.transferSize, total: nav.transferSize + assets};
}"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--agents", type=int, default=1000, help="emulated agents")
    parser.add_argument("--tasks", type=int, default=10_000, help="running tasks")
    parser.add_argument("--viewers", type=int, default=10, help="live UI pages open in churn")
    parser.add_argument("--seconds", type=float, default=10.0, help="each churn window")
    parser.add_argument("--churn-agents", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up setting up after")
    ns = parser.parse_args(argv)
    if ns.agents < 1 or ns.tasks < 1 or ns.viewers < 1 or ns.seconds <= 0:
        parser.error("--agents, --tasks and --viewers must be >= 1, --seconds > 0")
    return ns


@contextlib.contextmanager
def master_process(work_dir: str) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """``python -m master`` with HTTP on a free port: (gRPC address, HTTP address, process)."""
    args = [sys.executable, "-m", "master", "--port", "0", "--http-port", "0"]
    args += ["--work-dir", work_dir, "--allocation-interval", "0.5"]
    log = Path(work_dir, "master.log").open("wb")  # noqa: SIM115 - closed below
    process = start_child(args, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            match = _MASTER_LINE.search(line)
            if match:
                break
        else:
            raise RuntimeError(f"the master exited: {Path(work_dir, 'master.log').read_text()}")
        yield match.group(1), match.group(2), process
    finally:
        process.kill()
        process.wait()
        log.close()


@contextlib.asynccontextmanager
async def chromium(profile: str) -> AsyncIterator[Any]:
    """Chromium started here (so it dies with this process), driven by Playwright over CDP."""
    from playwright.async_api import async_playwright

    args = [CHROMIUM, *CHROMIUM_ARGS, f"--user-data-dir={profile}", "--remote-debugging-port=0"]
    process = start_child(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        endpoint = None
        for line in process.stderr:
            found = _DEVTOOLS.search(line)
            if found:
                endpoint = found.group(1)
                break
        if endpoint is None:
            raise RuntimeError("chromium exited without a DevTools endpoint")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.connect_over_cdp(endpoint)
            try:
                yield browser.contexts[0] if browser.contexts else await browser.new_context()
            finally:
                await browser.close()
    finally:
        process.kill()
        process.wait()


async def timed_load(context: Any, url: str, *selectors: str) -> dict[str, Any]:
    """Open ``url`` in a new tab twice (cold, then warm): seconds until every selector is
    there, and the bytes of the cold load."""
    out: dict[str, Any] = {}
    page = await context.new_page()
    for run in ("cold", "warm"):
        started = time.monotonic()
        await page.goto(url, wait_until="commit")
        for selector in selectors:
            await page.wait_for_selector(selector, timeout=120_000)
        out[run] = time.monotonic() - started
        if run == "cold":
            out["bytes"] = await page.evaluate(_PAGE_BYTES)
    await page.close()
    return out


async def metric(client: httpx.AsyncClient, name: str) -> float:
    """One figure of the master's ``/metrics/snapshot``."""
    response = await client.get("/metrics/snapshot")
    return float(response.json().get(name, 0.0))


async def window(client: httpx.AsyncClient, pid: int, seconds: float) -> tuple[float, float, float]:
    """(master CPU seconds, tasks finished, wall seconds) over ``seconds``."""
    cpu0, done0, wall0 = (
        process_cpu_seconds(pid),
        await metric(client, "master/tasks_finished"),
        (time.monotonic()),
    )
    await asyncio.sleep(seconds)
    cpu1, done1 = process_cpu_seconds(pid), await metric(client, "master/tasks_finished")
    return cpu1 - cpu0, done1 - done0, time.monotonic() - wall0


async def run(ns: argparse.Namespace, work_dir: str) -> dict[str, Any]:
    """Set the cluster up, load the pages, measure churn with and without viewers."""
    per_agent = math.ceil(ns.tasks / ns.agents)
    need = Resources.parse(TASK_RESOURCES)
    agent_resources = f"cpus:{need.get('cpus') * per_agent:.2f};mem:{need.get('mem') * per_agent:g}"
    figures: dict[str, Any] = {"benchmark": "ui", "agents": ns.agents, "tasks": ns.tasks}
    with master_process(work_dir) as (address, http, process):
        base = f"http://{http}"
        long_lived = AgentEmulator(
            address,
            agents=ns.agents,
            resources=agent_resources,
            mode="run",
            hostname_prefix="node",
            register_timeout=ns.timeout,
        )
        started = time.monotonic()
        await long_lived.start()
        figures["registration_s"] = round(time.monotonic() - started, 2)
        channel = grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        )
        totals = Totals(target=ns.tasks)
        fill = BenchFramework(0, channel, ns.tasks, need, totals)
        runs = [asyncio.create_task(fill.run())]
        started = time.monotonic()
        await asyncio.wait_for(totals.running_done.wait(), ns.timeout)
        if totals.failure:
            raise RuntimeError(totals.failure)
        figures["launch_s"] = round(time.monotonic() - started, 2)
        churn_agents = AgentEmulator(
            address,
            agents=ns.churn_agents,
            resources="cpus:16;mem:16384",
            mode="finish",
            hostname_prefix="churn",
            first_index=ns.agents,
        )
        async with (
            httpx.AsyncClient(base_url=base, timeout=60) as client,
            chromium(os.path.join(work_dir, "chromium")) as context,
        ):
            overview = await timed_load(
                context, base + "/", "#overview-agents tbody tr", "#charts .uplot >> nth=3"
            )
            tasks = await timed_load(context, base + "/ui/tasks", "#tasks tr[data-task-id]")
            agents = await timed_load(context, base + "/ui/agents", "#agents tr[data-agent-id]")
            for name, found in (("overview", overview), ("tasks", tasks), ("agents", agents)):
                figures[f"{name}_usable_s"] = round(found["cold"], 3)
                figures[f"{name}_usable_warm_s"] = round(found["warm"], 3)
                figures[f"{name}_bytes"] = found["bytes"]["total"]
                figures[f"{name}_document_bytes"] = found["bytes"]["document"]

            await churn_agents.start()
            churn = BenchFramework(1, channel, 10**9, need, Totals(target=10**9))
            runs.append(asyncio.create_task(churn.run()))
            await asyncio.sleep(min(5.0, ns.seconds))  # churn reaches its pace
            cpu_no, done_no, wall_no = await window(client, process.pid, ns.seconds)
            pages = []
            for i in range(ns.viewers):
                page = await context.new_page()
                await page.goto(base + ("/" if i % 2 == 0 else "/ui/tasks"))
                await page.wait_for_selector("#live.on", timeout=120_000)
                pages.append(page)
            cpu_ui, done_ui, wall_ui = await window(client, process.pid, ns.seconds)
            for page in pages:
                await page.close()
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await channel.close(None)
        await churn_agents.stop()
        await long_lived.stop()
    updates_no, updates_ui = 2 * done_no / wall_no, 2 * done_ui / wall_ui
    busy_no, busy_ui = cpu_no / wall_no, cpu_ui / wall_ui
    # CPU the viewers added, per viewer, per 1,000 updates (cores x seconds / updates).
    extra = max(0.0, busy_ui - busy_no)
    per_thousand = extra / ns.viewers / (updates_ui / 1000) if updates_ui else None
    figures.update(
        viewers=ns.viewers,
        updates_per_s_no_ui=round(updates_no, 1),
        updates_per_s_with_ui=round(updates_ui, 1),
        master_cpu_no_ui=round(busy_no, 3),
        master_cpu_with_ui=round(busy_ui, 3),
        ui_share_of_master_cpu=rounded(extra / busy_ui if busy_ui else None, 3),
        cpu_s_per_viewer_per_1000_updates=rounded(per_thousand, 5),
        **machine(),
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one JSON object."""
    kill_children_on_signals()
    ns = parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        emit({"benchmark": "ui", "error": f"chromium is not installed at {CHROMIUM}"})
        return 1
    work_dir = tempfile.mkdtemp(prefix="emporion-bench-ui-")
    try:
        figures = asyncio.run(asyncio.wait_for(run(ns, work_dir), ns.timeout * 3))
    except (RuntimeError, TimeoutError) as error:
        figures = {"benchmark": "ui", "error": str(error) or type(error).__name__}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    emit(figures)
    return 0 if "error" not in figures else 1


if __name__ == "__main__":
    sys.exit(main())
