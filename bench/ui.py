"""The web UI at scale: page times and sizes, and what live viewers cost the master.

``python -m bench.ui --agents N --tasks M [--viewers 10] [--seconds 10]`` starts a master in its
own process, registers N emulated agents (:class:`emporion.testing.AgentEmulator`, in this
process, mode ``run``: tasks run until told otherwise) sized so that M small tasks fill them,
and a framework (``bench.launch_throughput``'s) that launches the M tasks. Then Debian's
chromium (started here, driven through Playwright over CDP) measures:

* ``overview_usable_s`` / ``tasks_usable_s`` / ``agents_usable_s`` (and ``_warm_s``, the second
  load, assets cached): from navigation start until the page is usable: the overview's agents
  table and its four uPlot charts drawn; the tasks page's first page of rows; the agents table.
  The first is with an empty cache (the browser itself warmed up on ``/health``);
* ``*_bytes``: what each page transferred (document + assets, from the Resource Timing API)
  and its document alone (``*_document_bytes``);
* ``*_server_s``: what the master spent building the page (its ``Server-Timing`` header).

Then updates: this process sends status updates for the running tasks at ``--rate`` per
second (real updates: recorded by the master, forwarded to the framework, acknowledged, and
emitted as TASK_UPDATED to operator subscribers); with ``--updates transitions`` (the default,
the UI's worst case) each moves its task between TASK_STARTING and TASK_RUNNING, so every one
changes what a page shows; with ``--updates health`` each repeats TASK_RUNNING. Over
``--seconds`` with no UI open, with one, and with ``--viewers`` pages live (alternately overview
and tasks page), it samples the master with py-spy (``--gil``: its Python work) and reads its
CPU time (``/proc``):

* ``ui_share_of_master_samples_<n>_viewers``: the share of the master's samples inside the UI
  (``master/http/ui/`` and the HTTP serving under it): the UI's cost, whatever the pace;
* ``master_cpu_<n>_viewers`` (cores busy) and ``ui_share_of_master_cpu`` (what the viewers
  added, as a share of the master's CPU with them), ``first_viewer_cpu_s_per_1000_updates`` and
  ``cpu_s_per_viewer_per_1000_updates``: by difference between windows, so only as good as the
  pace was equal in them (on a busy machine it is not: the browser competes with the emulator).

One JSON object is printed.

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
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc.aio
import httpx

from bench._common import emit, kill_children_on_signals, machine, rounded, start_child
from bench.launch_throughput import BenchFramework, Totals, process_cpu_seconds, py_spy_record
from emporion.testing import AgentEmulator
from protos.resources import Resources
from protos.v1 import mesos_pb2

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
"""Flags for a headless chromium that reaches nothing but the pages it is sent to (the bench
and tests/browser both use them)."""
TASK_RESOURCES = "cpus:0.01;mem:1"
RUNNING, STARTING = mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_STARTING
_MASTER_LINE = re.compile(r"listening on (\S+) \(http (\S+)\)")
_DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")
_PAGE_BYTES = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const assets = performance.getEntriesByType('resource')
    .filter(r => !r.name.includes('/ui/events'))
    .reduce((sum, r) => sum + r.transferSize, 0);
  const app = (nav.serverTiming || []).find(t => t.name === 'app');
  return {document: nav.transferSize, total: nav.transferSize + assets,
          server_ms: app ? app.duration : null};
}"""


class PacedFramework(BenchFramework):
    """bench.launch_throughput's framework with at most ``in_flight`` calls under way: ten
    thousand offers answered at once made gRPC cancel some ACCEPTs on a busy machine."""

    def __init__(self, *args: Any, in_flight: int = 64, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(in_flight)

    async def _checked(self, method: Any, call: Any) -> None:
        async with self._gate:
            await super()._checked(method, call)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--agents", type=int, default=1000, help="emulated agents")
    parser.add_argument("--tasks", type=int, default=10_000, help="running tasks")
    parser.add_argument("--viewers", type=int, default=10, help="live UI pages open in churn")
    parser.add_argument("--seconds", type=float, default=10.0, help="each churn window")
    parser.add_argument("--rate", type=float, default=5000.0, help="task status updates per second")
    parser.add_argument(
        "--updates",
        choices=("transitions", "health"),
        default="transitions",
        help="transitions: every update moves its task between TASK_STARTING and TASK_RUNNING "
        "(each changes what a page shows: the UI's worst case); health: every update repeats "
        "TASK_RUNNING, as health and data updates do",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up setting up after")
    parser.add_argument(
        "--profiles",
        metavar="DIR",
        help="keep py-spy's collapsed stacks of the master in each window (DIR/<viewers>.txt)",
    )
    ns = parser.parse_args(argv)
    if ns.agents < 1 or ns.tasks < 1 or ns.viewers < 1 or ns.seconds <= 0:
        parser.error("--agents, --tasks and --viewers must be >= 1, --seconds > 0")
    return ns


@contextlib.contextmanager
def master_process(work_dir: str) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """``python -m master`` with HTTP on a free port: (gRPC address, HTTP address, process)."""
    args = [sys.executable, "-m", "master", "--port", "0", "--http-port", "0"]
    args += ["--work-dir", work_dir, "--allocation-interval", "0.5"]
    # Thousands of emulated agents answer pings from one busy process: give them time, so
    # that they stay registered while the benchmark loads the master and the browser.
    args += ["--agent-ping-timeout", "60", "--max-agent-ping-timeouts", "10"]
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


UI_FRAMES = ("master/http/ui/", "uvicorn/", "starlette/", "fastapi/", "h11/", "jinja2/")
"""Frames of the web UI's work in the master: its own package and the HTTP serving under it
(the pages, the live streams' writes; the benchmark's own two metric reads per window are in
there too, a rounding error)."""


def ui_share(raw: str) -> tuple[int, int]:
    """(samples in the UI's frames, all samples) of py-spy's raw (collapsed) output."""
    ui = total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        if any(frame in stack for frame in UI_FRAMES):
            ui += int(count)
    return ui, total


@contextlib.contextmanager
def sampled(pid: int, output: Path) -> Iterator[None]:
    """py-spy samples ``pid``'s thread holding the GIL (its Python work) into ``output``."""
    with py_spy_record(pid, output, "--rate", "200", "--gil"):
        yield


async def window(
    client: httpx.AsyncClient, pid: int, emulator: AgentEmulator, seconds: float, spy: Path
) -> tuple[float, float, float, float | None]:
    """(master CPU seconds, status updates the agents sent, wall seconds, the share of the
    master's Python samples in the UI's frames) over ``seconds``."""
    await metric(client, "master/uptime_secs")  # the connection is open before timing
    with sampled(pid, spy):
        cpu0, sent0 = process_cpu_seconds(pid), emulator.counters.updates_sent
        wall0 = time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, sent1 = process_cpu_seconds(pid), emulator.counters.updates_sent
        wall = time.monotonic() - wall0
    ui, total = ui_share(spy.read_text()) if spy.exists() else (0, 0)
    return cpu1 - cpu0, sent1 - sent0, wall, (ui / total if total else None)


async def drive(
    emulator: AgentEmulator, framework_id: str, tasks: int, rate: float, transitions: bool
) -> None:
    """Send status updates for the running tasks, round robin, at ``rate`` per second: with
    ``transitions`` each moves its task between TASK_STARTING and TASK_RUNNING, otherwise each
    repeats TASK_RUNNING.

    Each is a real status update: the master records it, forwards it to the framework, which
    acknowledges it, and emits TASK_UPDATED to operator subscribers. A task gets one every
    ``tasks / rate`` seconds, long after its previous one was acknowledged.
    """
    # The emulator finds a task's agent by scanning its agents; index them once instead.
    holder = {
        key: link
        for link in emulator._agents  # a benchmark's shortcut into the emulator, read-only
        for key in link.core.tasks
    }
    keys = [key for key in ((framework_id, f"0.{i}") for i in range(tasks)) if key in holder]
    loop = asyncio.get_running_loop()
    tick, owed, position, rounds = 0.05, 0.0, 0, 0
    while keys:
        started = loop.time()
        owed += rate * tick
        while owed >= 1:
            owed -= 1
            key = keys[position]
            position = (position + 1) % len(keys)
            rounds += position == 0
            state = STARTING if transitions and rounds % 2 == 0 else RUNNING
            link = holder[key]
            link.send(link.core.update(key[0], key[1], state, time.time()))
        await asyncio.sleep(max(0.0, tick - (loop.time() - started)))


async def settle(totals: Totals, timeout: float, stall: float = 30.0) -> None:
    """Wait until every task runs, or none started for ``stall`` seconds (a refused launch is
    not retried: the figures then say how many run and why the rest did not)."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while not totals.running_done.is_set():
        now = time.monotonic()
        if totals.running != seen:
            seen, since = totals.running, now
        elif now - since > stall and totals.running:
            return
        if now > deadline:
            raise RuntimeError(f"timed out: {totals.running} of {totals.target} tasks running")
        await asyncio.sleep(0.2)


async def run(ns: argparse.Namespace, work_dir: str, figures: dict[str, Any]) -> None:
    """Set the cluster up, load the pages, measure the updates with and without viewers;
    the figures go into ``figures`` as they are measured."""
    per_agent = math.ceil(ns.tasks / ns.agents)
    need = Resources.parse(TASK_RESOURCES)
    agent_resources = f"cpus:{need.get('cpus') * per_agent:.2f};mem:{need.get('mem') * per_agent:g}"
    with master_process(work_dir) as (address, http, process):
        base = f"http://{http}"
        emulator = AgentEmulator(
            address,
            agents=ns.agents,
            resources=agent_resources,
            mode="run",
            hostname_prefix="node",
            register_timeout=ns.timeout,
        )
        started = time.monotonic()
        await emulator.start()
        figures["registration_s"] = round(time.monotonic() - started, 2)
        channel = grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        )
        totals = Totals(target=ns.tasks)
        fill = PacedFramework(0, channel, ns.tasks, need, totals, max_tasks_per_offer=500)
        runner = asyncio.create_task(fill.run())
        started = time.monotonic()
        await settle(totals, ns.timeout)
        figures["launch_s"] = round(time.monotonic() - started, 2)
        figures["tasks_running"] = totals.running
        if totals.failure:
            figures["launch_failure"] = totals.failure
        async with (
            httpx.AsyncClient(base_url=base, timeout=60) as client,
            chromium(os.path.join(work_dir, "chromium")) as context,
        ):
            # Warm the browser up (its first page starts processes), not its cache.
            warm_up = await context.new_page()
            await warm_up.goto(base + "/health")
            await warm_up.close()
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
                figures[f"{name}_server_s"] = rounded(
                    None
                    if found["bytes"]["server_ms"] is None
                    else found["bytes"]["server_ms"] / 1000
                )

            driver = asyncio.create_task(
                drive(
                    emulator,
                    fill.framework_id.value,
                    ns.tasks,
                    ns.rate,
                    transitions=ns.updates == "transitions",
                )
            )
            await asyncio.sleep(min(5.0, ns.seconds))  # the master settles at the pace
            spy = Path(ns.profiles or work_dir)
            spy.mkdir(parents=True, exist_ok=True)
            windows = {0: await window(client, process.pid, emulator, ns.seconds, spy / "0.txt")}
            pages: list[Any] = []
            for count in (1, ns.viewers):
                while len(pages) < count:
                    # Each viewer in a browser context of its own, as if on its own machine: one
                    # profile opens at most 6 connections to the master, and each page holds one.
                    page = await (await context.browser.new_context()).new_page()
                    path = "/" if len(pages) % 2 == 0 else "/ui/tasks"
                    await page.goto(base + path, wait_until="commit", timeout=120_000)
                    await page.wait_for_selector("#live.on", timeout=120_000)
                    pages.append(page)
                windows[count] = await window(
                    client, process.pid, emulator, ns.seconds, spy / f"{count}.txt"
                )
            for page in pages:
                await page.context.close()
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await channel.close(None)
        await emulator.stop()
    figures.update(update_figures(windows, ns.viewers, ns.rate))


def update_figures(
    windows: dict[int, tuple[float, float, float, float | None]], viewers: int, rate: float
) -> dict[str, Any]:
    """Figures of the update windows (viewers -> master CPU s, updates sent, wall s, UI share
    of the master's Python samples).

    The master's CPU is also compared per update, in case the pace fell short of ``rate`` in
    some window (the viewers' browser competes for this machine's cores with the emulator).
    """
    out: dict[str, Any] = {"viewers": viewers, "rate": rate}
    per_update: dict[int, float | None] = {}
    for count, (cpu, sent, wall, share) in sorted(windows.items()):
        out[f"ui_share_of_master_samples_{count}_viewers"] = rounded(share, 3)
        out[f"updates_per_s_{count}_viewers"] = round(sent / wall, 1)
        out[f"master_cpu_{count}_viewers"] = round(cpu / wall, 3)
        cost = cpu / sent if sent else None
        per_update[count] = cost
        out[f"master_cpu_us_per_update_{count}_viewers"] = rounded(
            None if cost is None else cost * 1e6, 1
        )
    none, one, many = per_update.get(0), per_update.get(1), per_update.get(viewers)
    if none is not None and one is not None:
        # The first viewer opens the UI's one subscription to the operator events.
        out["first_viewer_cpu_s_per_1000_updates"] = rounded((one - none) * 1000, 5)
    if one is not None and many is not None and viewers > 1:
        out["cpu_s_per_viewer_per_1000_updates"] = rounded((many - one) / (viewers - 1) * 1000, 5)
    busy = {count: cpu / wall for count, (cpu, _sent, wall, _share) in windows.items()}
    if 0 in busy and viewers in busy and busy[viewers]:
        out["ui_share_of_master_cpu"] = rounded(
            max(0.0, busy[viewers] - busy[0]) / busy[viewers], 3
        )
    return out


def run_bounded(coroutine: Coroutine[Any, Any, None], grace: float = 5.0) -> None:
    """``asyncio.run`` whose clean-up gives cancelled tasks ``grace`` seconds, not for ever:
    interrupted (SIGTERM unwinds it), ten thousand emulated agents must not hold it up."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=grace))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one JSON object."""
    kill_children_on_signals()
    ns = parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        emit({"benchmark": "ui", "error": f"chromium is not installed at {CHROMIUM}"})
        return 1
    work_dir = tempfile.mkdtemp(prefix="emporion-bench-ui-")
    figures: dict[str, Any] = {
        "benchmark": "ui",
        "agents": ns.agents,
        "tasks": ns.tasks,
        "updates": ns.updates,
    }
    try:
        run_bounded(asyncio.wait_for(run(ns, work_dir, figures), ns.timeout * 3))
    except Exception as error:  # the figures measured so far are printed with the error
        figures["error"] = f"{type(error).__name__}: {error}"[:2000]
    except SystemExit as stop:  # SIGTERM or SIGHUP (bench._common): print, then go on exiting
        figures["error"] = f"interrupted (exit status {stop.code})"
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        figures.update(machine())
        emit(figures)
    return 0 if "error" not in figures else 1


if __name__ == "__main__":
    sys.exit(main())
