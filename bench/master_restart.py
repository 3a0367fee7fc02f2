"""Master restart: how soon real agents are back with a standalone master restarted on its port.

``python -m bench.master_restart --agents 3 --down-seconds 30`` starts a standalone master
(file registry in a temporary work dir) and ``--agents`` real agents (posix isolation, Mesos's
1 s registration backoff factor), waits until all registered, kills the master (SIGKILL),
leaves it down ``--down-seconds`` (long enough for the agents' backoff to grow: 25-34 s
before issue 10's fix), restarts it on the same port and work dir, and waits until every agent
reregistered. It prints one JSON object: ``agents_back_after_up_s`` (from the restarted master
printing its address to the last agent's reregistration in its log), ``agents_back_p50_s``,
``down_s`` and the machine.

Every process dies with the benchmark however it ends (:mod:`bench._common`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import emit, kill_children, kill_children_on_signals, machine, rounded
from bench.launch_latency import start_process

WAIT = 120.0
_REREGISTERED = re.compile(r"agent (\S+) \(\S+\) reregistered with")


def _master(work: Path, port: int, log: Path) -> tuple[subprocess.Popen[str], str, float]:
    """Start the master; its process, address, and when it printed the address."""
    args = [sys.executable, "-m", "master", "--port", str(port), "--http-port", "0"]
    args += ["--work-dir", str(work), "--allocation-interval", "100ms"]
    process, found = start_process(args, log, r"listening on (\S+)")
    return process, found.group(1), time.perf_counter()


def _wait_log(log: Path, pattern: re.Pattern[str], count: int) -> dict[str, float]:
    """Wait until ``pattern`` matched ``count`` distinct ids in ``log``; when each was first
    seen (polled every 10 ms)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + WAIT
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(seen)} of {count} agents came back")
        now = time.perf_counter()
        for match in pattern.finditer(log.read_text(errors="replace")):
            seen.setdefault(match.group(1), now)
        time.sleep(0.01)
    return seen


def measure(ns: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario; the figures."""
    work = Path(tempfile.mkdtemp(prefix="master-restart-"))
    try:
        master, address, _ = _master(work / "master", 0, work / "master-1.log")
        port = int(address.rsplit(":", 1)[1])
        for index in range(ns.agents):
            args = [sys.executable, "-m", "agent", "--master", address, "--isolation", "posix"]
            args += ["--work-dir", str(work / f"agent{index}"), "--port", "0"]
            args += ["--ip", "127.0.0.1", "--resources", "cpus:1;mem:1024;disk:1024"]
            start_process(
                args, work / f"agent{index}.log", r"emporion agent: http=", signal.SIGUSR1
            )
        registered = re.compile(r"agent (\S+) \(\S+\) registered with")
        _wait_log(work / "master-1.log", registered, ns.agents)
        master.kill()
        master.wait()
        down = time.perf_counter()
        time.sleep(ns.down_seconds)
        restarted = work / "master-2.log"
        _, _, up = _master(work / "master", port, restarted)
        back = _wait_log(restarted, _REREGISTERED, ns.agents)
        delays = [at - up for at in back.values()]
        return {
            "benchmark": "master_restart",
            "agents": ns.agents,
            "down_s": rounded(up - down, 2),
            "agents_back_after_up_s": rounded(max(delays), 3),
            "agents_back_p50_s": rounded(statistics.median(delays), 3),
            "driver": "real standalone master (file registry), real agents (posix isolation)",
            "machine": machine(),
        }
    finally:
        kill_children()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, run, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.master_restart", description=__doc__)
    parser.add_argument("--agents", type=int, default=3, help="real agents [3]")
    parser.add_argument(
        "--down-seconds", type=float, default=30.0, help="how long the master stays down [30]"
    )
    ns = parser.parse_args(argv)
    if ns.agents < 1 or ns.down_seconds < 0:
        parser.error("--agents must be >= 1 and --down-seconds >= 0")
    emit(measure(ns))
    return 0


if __name__ == "__main__":
    kill_children_on_signals()
    raise SystemExit(main())
