"""The agent emulator's command line: ``python -m emporion.testing.agent_emulator``.

Runs until SIGINT/SIGTERM, printing its counters as JSON (every ``--stats-interval`` seconds,
and at exit)::

    python -m emporion.testing.agent_emulator --master HOST:PORT[,HOST:PORT] --agents N
    python -m emporion.testing.agent_emulator --master zk://H1:P1,H2:P2/emporion --agents N

``--master`` defaults to ``EMPORION_MASTER``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from emporion.testing.agent_emulator import AgentEmulator
from emporion.testing.emulated_agent import EmulatorCounters, Mode
from emporion.testing.emulator_config import (
    DEFAULT_REREGISTER_SPREAD,
    DEFAULT_RESOURCES,
    EmulatorConfig,
    parse_master,
    parse_mode,
)
from protos.durations import parse_duration

__all__ = ["counters_json", "main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, float]:
    """Command-line flags (``--master`` defaults to ``EMPORION_MASTER``) as a configuration,
    and the interval between counter reports (0: only at exit)."""
    parser = argparse.ArgumentParser(
        prog="python -m emporion.testing.agent_emulator",
        description="Emulate many Emporion agents against a master.",
    )
    parser.add_argument(
        "--master",
        default=os.environ.get("EMPORION_MASTER"),
        help="host:port of the master (comma-separated for several), or zk://hosts/path to "
        "follow the leader through ZooKeeper",
    )
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--resources", default=DEFAULT_RESOURCES)
    parser.add_argument("--attributes", default="")
    parser.add_argument("--mode", default="finish", choices=[m.value for m in Mode])
    parser.add_argument("--hostname-prefix", default="emulated-agent")
    parser.add_argument("--first-index", type=int, default=0)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument(
        "--unbatched",
        action="store_true",
        help="use Connect (one message per stream message) instead of ConnectBatched",
    )
    parser.add_argument(
        "--zk-session-timeout",
        default="10secs",
        help="ZooKeeper session timeout with a zk:// --master (a duration; default 10secs)",
    )
    parser.add_argument(
        "--reregister-spread",
        default=f"{DEFAULT_REREGISTER_SPREAD:g}secs",
        help="with a zk:// --master, agents rejoin a new leader at random within this window",
    )
    parser.add_argument(
        "--register-timeout",
        default="60secs",
        help="give up (exit 1) if the agents are not all registered within this (a duration)",
    )
    parser.add_argument(
        "--start-at",
        type=float,
        default=None,
        help="connect no earlier than this time (seconds since the epoch): lets several "
        "emulators started in turn begin together",
    )
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=0.0,
        help="print the counters as JSON every S seconds (0: only at exit)",
    )
    ns = parser.parse_args(argv)
    if not ns.master:
        parser.error("--master is required (or set EMPORION_MASTER)")
    try:
        masters, zk_url = parse_master(ns.master)
        config = EmulatorConfig(
            masters=masters,
            zk_url=zk_url,
            zk_session_timeout=_seconds("zk_session_timeout", ns.zk_session_timeout),
            reregister_spread=_seconds("reregister_spread", ns.reregister_spread),
            agents=ns.agents,
            resources=ns.resources,
            attributes=ns.attributes,
            mode=parse_mode(ns.mode),
            hostname_prefix=ns.hostname_prefix,
            first_index=ns.first_index,
            channels=ns.channels,
            record_run_task_times=False,
            batched=not ns.unbatched,
            register_timeout=_seconds("register_timeout", ns.register_timeout),
            start_at=ns.start_at,
        )
    except ValueError as error:
        parser.error(str(error))
    return config, ns.stats_interval


def _seconds(field: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ValueError(f"field {field!r}: {error}") from None


def counters_json(counters: EmulatorCounters) -> str:
    """The counters as one JSON line (lists summarised by their length)."""
    figures = {
        name: (len(value) if isinstance(value, list | dict) else value)
        for name, value in vars(counters).items()
        if name != "record_run_task_times"
    }
    return json.dumps(figures, sort_keys=True)


async def _serve(config: EmulatorConfig, stats_interval: float) -> None:
    emulator = AgentEmulator.from_config(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    delay = config.start_at - time.time() if config.start_at is not None else 0.0
    if delay > 0:  # Several emulators started together (bench.scale) begin at one instant.
        await asyncio.sleep(delay)
    await emulator.start(wait=False)
    try:
        await emulator.wait_registered(config.register_timeout)
        print(f"registered {config.agents} agents with {config.master_text}", flush=True)
        while not stop.is_set():
            timeout = stats_interval if stats_interval > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
            if stats_interval > 0:
                print(counters_json(emulator.counters), flush=True)
    finally:
        await emulator.stop()
        print(counters_json(emulator.counters), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    config, stats_interval = parse_args(argv)
    # Each agent keeps a few hundred long-lived objects (its stream, tasks, state): with the
    # default thresholds the cyclic collector took a third of an emulator of 12,500 agents,
    # rescanning them all again and again while more registered. Collect young objects less
    # often and the old generation rarely: an emulator makes little cyclic garbage.
    gc.set_threshold(100_000, 50, 100)
    try:
        asyncio.run(_serve(config, stats_interval))
    except TimeoutError as error:
        print(f"agent_emulator: {error}", file=sys.stderr)
        return 1
    return 0
