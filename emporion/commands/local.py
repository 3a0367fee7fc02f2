"""``emporion local``: a master and N agents on this machine, with one command.

Without ``--run`` it prints where the master listens and serves until Ctrl-C (or SIGTERM), then
stops every process and removes its temporary work dir. With ``--run CMD`` it runs ``CMD``
against the cluster (``{master}`` in it becomes the master's ``host:port``, also given as
``EMPORION_MASTER``), stops the cluster and exits with the command's status: this is what
``make demo`` does.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from emporion.local_cluster import ClusterError, LocalCluster

__all__ = ["cmd_local", "register"]


def cmd_local(ns: argparse.Namespace) -> int:
    """Start the cluster; serve until a signal, or run ``--run`` against it."""
    try:
        cluster = LocalCluster(
            agents=ns.agents,
            work_dir=Path(ns.work_dir) if ns.work_dir else None,
            port=ns.port,
            isolation=ns.isolation,
            agent_resources=ns.agent_resources,
        )
    except ValueError as error:
        print(f"emporion local: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            master = cluster.start()
        except ClusterError as error:
            print(f"emporion local: {error}", file=sys.stderr)
            return 1
        http = cluster.master_http_address
        print(
            f"Emporion local cluster: master at {master}"
            + (f" (web UI and HTTP API at http://{http}/)" if http else "")
            + f", {ns.agents} agent(s), work dir {cluster.root}",
            flush=True,
        )
        if ns.run:
            return _run_against(ns.run, master, stop)
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
        return 0
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Emporion local cluster stopped.", flush=True)


def _run_against(command: str, master: str, stop: threading.Event) -> int:
    argv = shlex.split(command.replace("{master}", master))
    env = {**os.environ, "EMPORION_MASTER": master}
    child = subprocess.Popen(argv, env=env)
    while child.poll() is None:
        if stop.wait(0.1):
            child.terminate()
            child.wait()
            return 130
    return child.returncode


def register(subparsers: Any) -> None:
    """Add the ``local`` subcommand to the ``emporion`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local",
        help="run a master and N agents on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--agents", type=int, default=1, help="number of agents [1]")
    parser.add_argument("--port", type=int, default=0, help="the master's port; 0 picks one [0]")
    parser.add_argument("--work-dir", help="keep state here instead of a temporary directory")
    parser.add_argument(
        "--isolation", default="auto", choices=("auto", "cgroups", "posix"), help="[auto]"
    )
    parser.add_argument("--agent-resources", help="each agent's resources [a share of this host's]")
    parser.add_argument(
        "--run", metavar="CMD", help="run CMD against the cluster, then stop; {master} = address"
    )
    parser.set_defaults(func=cmd_local)
