"""``emporion local``: a master and N agents on this machine, with one command.

Without ``--run`` it prints where the master, its web UI and the logs are, and serves until
Ctrl-C (or SIGTERM); then it stops every process and removes its temporary work dir. With
``--run CMD`` it runs CMD against the cluster and exits with CMD's status; this is what
``make demo`` does. When CMD fails the work dir is kept, and the message says where, since its
logs are what explains the failure.

CMD runs with this Python's ``bin`` directory first on ``PATH`` and a bare ``python`` meaning
this interpreter: a command run from a virtualenv's ``emporion`` finds the virtualenv's
packages without activating it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from emporion.commands.certs import make_cluster_certs
from emporion.local_cluster import ClusterError, LocalCluster
from protos.resources import Resources, likely_typos

__all__ = ["cmd_local", "register", "run_environment"]

DESCRIPTION = """\
Run a master and N agents on this machine.

Without --run it prints where the master, its web UI and the logs are, and serves until Ctrl-C;
then it stops everything and removes its temporary work dir.

With --run CMD it runs CMD against the cluster, stops the cluster and exits with CMD's status.
In CMD, {master} is replaced by the master's HOST:PORT (also given as EMPORION_MASTER), and a
bare 'python' is the Python running emporion (its bin directory comes first on PATH). When CMD
fails, the work dir and its logs are kept and their place is printed.

example:
  emporion local --agents 2 --run "python -m examples.hello_framework --master {master}"
"""

PYTHON_NAMES = frozenset({"python", "python3"})


def run_environment(master: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of ``--run``'s command: ``EMPORION_MASTER``, this Python's bin first."""
    env = dict(os.environ if environ is None else environ)
    env["EMPORION_MASTER"] = master
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)]
    )
    return env


def _fail(message: str) -> int:
    print(f"emporion local: {message}", file=sys.stderr)
    return 2


def cmd_local(ns: argparse.Namespace) -> int:
    """Start the cluster; serve until a signal, or run ``--run`` against it."""
    if ns.agents < 1:
        return _fail(f"--agents must be at least 1, not {ns.agents}")
    if ns.run is not None:
        try:
            words = shlex.split(ns.run)
        except ValueError as error:  # Unbalanced quotes: say so before starting anything.
            return _fail(f"--run {ns.run!r}: {error}")
        if not words:
            return _fail("--run needs a command")
    certs = Path(tempfile.mkdtemp(prefix="emporion-local-tls-")) if ns.tls else None
    try:
        return _local(ns, certs)
    finally:
        if certs is not None:
            shutil.rmtree(certs, ignore_errors=True)


def tls_flags(certs: Path) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """For a cluster whose certificates are in ``certs`` (``emporion certs``): the master's
    flags, the agents' flags and the environment of frameworks run against it."""
    files = ("--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem"))
    ca = ("--tls-ca", str(certs / "ca.pem"))
    return (*files, *ca), (*files, *ca), {"EMPORION_SDK_TLS_CA": str(certs / "ca.pem")}


def _local(ns: argparse.Namespace, certs: Path | None) -> int:
    master_flags: tuple[str, ...] = ()
    agent_flags: tuple[str, ...] = ()
    extra_env: dict[str, str] = {}
    if certs is not None:
        # Agents advertise this host's name, and the master's sandbox proxy (``emporion run``'s
        # output, ``logs``, the UI) reaches them by it: the certificate must name it too.
        make_cluster_certs(certs, ["localhost", "127.0.0.1", socket.gethostname()])
        master_flags, agent_flags, extra_env = tls_flags(certs)
    if ns.agent_gateways:
        master_flags = (*master_flags, "--agent-gateways", str(ns.agent_gateways))
    try:
        cluster = LocalCluster(
            agents=ns.agents,
            work_dir=Path(ns.work_dir) if ns.work_dir else None,
            port=ns.port,
            isolation=ns.isolation,
            agent_resources=ns.agent_resources,
            master_flags=master_flags,
            agent_flags=agent_flags,
        )
    except ValueError as error:
        return _fail(str(error))
    if ns.agent_resources:
        try:
            for warning in likely_typos(Resources.parse(ns.agent_resources)):
                print(f"emporion local: warning: --agent-resources: {warning}", file=sys.stderr)
        except ValueError as error:
            return _fail(f"--agent-resources: {error}")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    keep = False
    try:
        try:
            master = cluster.start()
        except ClusterError as error:
            if error.status == 2:  # It refused a flag or its port: its one line says which.
                return _fail(f"{error.process} could not start: {error.reason}")
            print(f"emporion local: {error}", file=sys.stderr)
            return 1
        _print_banner(cluster, master, ns.agents, "https" if certs is not None else "http")
        if certs is not None:
            print(
                f"  TLS: CA {certs / 'ca.pem'} (frameworks: export"
                f" EMPORION_SDK_TLS_CA={certs / 'ca.pem'})",
                flush=True,
            )
        if ns.run is None:
            print("Press Ctrl-C to stop.", flush=True)
            stop.wait()
            return 0
        status = _run_against(ns.run, master, stop, extra_env)
        if status not in (0, 130):
            keep = True
            print(
                f"emporion local: the command exited with status {status}; the cluster's work"
                f" dir is kept: {cluster.root} (logs in {cluster.root / 'logs'})",
                file=sys.stderr,
                flush=True,
            )
        return status
    finally:
        cluster.stop(keep_work_dir=keep)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Emporion local cluster stopped.", flush=True)


def _print_banner(cluster: LocalCluster, master: str, agents: int, scheme: str) -> None:
    http = cluster.master_http_address
    root = cluster.root
    lines = [
        f"Emporion local cluster: master at {master}"
        + (f" (web UI and HTTP API at {scheme}://{http}/)" if http else "")
        + f", {agents} agent(s), work dir {root}",
        f"  logs: {root / 'logs'} (master.log, agent-0.log, ...)",
        f"  frameworks: --master {master}, or export EMPORION_MASTER={master}",
    ]
    if cluster.agents_address is not None:
        lines.append(f"  agents: through the master's gateways at {cluster.agents_address}")
    print("\n".join(lines), flush=True)


def _run_against(
    command: str, master: str, stop: threading.Event, extra_env: dict[str, str]
) -> int:
    argv = shlex.split(command.replace("{master}", master))
    if argv and argv[0] in PYTHON_NAMES:
        argv[0] = sys.executable
    try:
        child = subprocess.Popen(argv, env={**run_environment(master), **extra_env})
    except OSError as error:
        print(f"emporion local: cannot run {argv[0]!r}: {error.strerror or error}", file=sys.stderr)
        return 127
    while child.poll() is None:
        if stop.wait(0.1):
            # Ctrl-C reached the command too (same process group): give it time to end
            # quietly; SIGTERM (sent to us alone) reaches it as SIGTERM, then SIGKILL.
            for ending in (None, child.terminate, child.kill):
                if ending is not None:
                    ending()
                try:
                    child.wait(5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            return 130
    return child.returncode


def register(subparsers: Any) -> None:
    """Add the ``local`` subcommand to the ``emporion`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local",
        usage="%(prog)s [--agents N] [--run CMD] [options]",
        help="run a master and N agents on this machine",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--agents", type=int, default=1, metavar="N", help="number of agents, 1 or more [1]"
    )
    parser.add_argument(
        "--port", type=int, default=0, metavar="PORT", help="the master's port; 0 picks one [0]"
    )
    parser.add_argument(
        "--work-dir", metavar="DIR", help="keep state here instead of a temporary directory"
    )
    parser.add_argument(
        "--isolation", default="auto", choices=("auto", "cgroups", "posix"), help="[auto]"
    )
    parser.add_argument(
        "--agent-resources",
        metavar="RESOURCES",
        help="each agent's resources [a share of this host's]",
    )
    parser.add_argument(
        "--run", metavar="CMD", help="run CMD against the cluster, then stop; {master} = address"
    )
    parser.add_argument(
        "--agent-gateways",
        type=int,
        default=0,
        metavar="N",
        help="end the agents' streams in N gateway processes of the master (docs/scale.md) [0]",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve every endpoint over TLS, with a CA and certificates made for the run",
    )
    parser.set_defaults(func=cmd_local)
