"""What every command for people shares: ``--master``/``--json``, errors as one line, output.

A command is written as ``def cmd(ns, session: Session) -> int`` and registered through
:func:`add_command`, which adds the shared flags and wraps it: its ``check`` of the arguments
runs first (a ValueError is one line, exit 2, before any master is asked), then the master is
found (:func:`emporion.client.discover`), and any :class:`~emporion.client.ClientError` becomes one
line ``emporion <command>: <message>`` on stderr with its exit status (2 for an unreachable
master, bad input or an unknown id; 1 for a call the master refused). Tables go through rich;
``--json`` prints the operator API's own objects instead, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console, RenderableType

from emporion.client import (
    ENV_MASTER,
    ClientError,
    MasterEndpoints,
    OperatorClient,
    discover,
    master_from_env,
)

__all__ = [
    "Session",
    "add_command",
    "console",
    "print_json",
    "quantity",
    "short_state",
    "show",
    "timestamp",
]

DISCOVERY_TIMEOUT = 5.0
"""Seconds to wait for a master (or ZooKeeper) to say where its HTTP API is."""


@dataclass
class Session:
    """Session: the master a command talks to, found from ``--master``."""

    endpoints: MasterEndpoints
    operator: OperatorClient


Command = Callable[[argparse.Namespace, Session], int]


def add_command(
    subparsers: Any,
    name: str,
    run: Command,
    *,
    help: str,
    description: str | None = None,
    check: Callable[[argparse.Namespace], None] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand ``name`` with ``--master`` and ``--json``, running ``run`` when chosen
    (after ``check(ns)``, which raises ValueError for arguments that cannot work)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--master",
        metavar="ADDRESS",
        help=(
            "the master: HOST:PORT of its gRPC port (what frameworks are given), zk://HOSTS/PATH,"
            f" or http://HOST:HTTP_PORT [${ENV_MASTER}]"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=_guarded(name, run, check))
    return parser


def _guarded(
    name: str, run: Command, check: Callable[[argparse.Namespace], None] | None
) -> Callable[[argparse.Namespace], int]:
    def func(ns: argparse.Namespace) -> int:
        try:
            if check is not None:
                check(ns)
        except ValueError as error:
            print(f"emporion {name}: {error}", file=sys.stderr, flush=True)
            return 2
        try:
            endpoints = discover(master_from_env(ns.master), timeout=DISCOVERY_TIMEOUT)
            with OperatorClient(
                endpoints.http, endpoints.given, security=endpoints.security
            ) as operator:
                return run(ns, Session(endpoints, operator))
        except ClientError as error:
            print(f"emporion {name}: {error}", file=sys.stderr, flush=True)
            return error.exit_status

    return func


def console(stderr: bool = False) -> Console:
    """A rich console; wide when not a terminal, so ids are never cut in a pipe or a file."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else max(160, int(os.environ.get("COLUMNS", "0") or 0))
    # Task names, commands and messages are the users': never read as markup or emoji codes.
    return Console(
        file=stream, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False
    )


def show(*renderables: RenderableType) -> None:
    """Print tables and text on stdout; in a pipe or a file without rich's padding spaces."""
    out = console()
    if sys.stdout.isatty():
        out.print(*renderables, sep="\n")
        return
    with out.capture() as captured:
        out.print(*renderables, sep="\n")
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout."""
    print(json.dumps(value, indent=2, sort_keys=False))


def timestamp(value: object) -> str:
    """A time (seconds, or the operator API's ``{"nanoseconds": N}``) as local date and time."""
    if isinstance(value, Mapping):
        value = int(value.get("nanoseconds", 0)) / 1e9
    if not isinstance(value, int | float) or value <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def quantity(value: float) -> str:
    """A resource amount without a useless ``.0``: ``2``, ``0.5``, ``1.25``."""
    return f"{value:g}" if value != int(value) else str(int(value))


def short_state(state: str) -> str:
    """``RUNNING`` for ``TASK_RUNNING``."""
    return state.removeprefix("TASK_")
