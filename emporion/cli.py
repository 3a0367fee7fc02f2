"""The ``emporion`` command line.

Each subcommand lives in its own module under ``emporion.commands`` (the commands for people,
``run``, ``status``, ``tasks``, ``logs`` ..., under ``emporion.commands.ops``) and exposes
``register(subparsers)``; this module only assembles them. A subcommand is a function taking the
parsed arguments and returning an exit status; bad input prints one line naming what is wrong and
exits with status 2, as argparse does. Ctrl-C ends any subcommand with status 130 and no
traceback (commands that own something to clean up, such as ``run``, do so first); a closed
output pipe (``emporion tasks | head``) ends it quietly too.

The commands for people answer in a fraction of a second: when the first argument names one of
them, only their modules are imported, not the master's and agent's (FastAPI, uvicorn, ...).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType

SERVER_COMMANDS = ("master", "agent", "local", "resources", "certs")
"""Modules of ``emporion.commands`` that run (or configure) cluster processes."""

PEOPLE_COMMANDS = frozenset(
    {"run", "status", "agents", "frameworks", "tasks", "task", "logs", "explain", "teardown"}
)
"""The commands registered by ``emporion.commands.ops`` (its modules' ``register``)."""

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""


def _version() -> str:
    try:
        return metadata.version("emporion")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def subcommand_modules(people_only: bool = False) -> list[ModuleType]:
    """The modules whose ``register`` add the subcommands (only those for people, if asked)."""
    from emporion.commands import ops

    servers = [] if people_only else SERVER_COMMANDS
    return [importlib.import_module(f"emporion.commands.{name}") for name in servers] + list(
        ops.MODULES
    )


def build_parser(people_only: bool = False) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered (or only those for people)."""
    parser = argparse.ArgumentParser(
        prog="emporion", description="Emporion: a two-level, offer-based resource scheduler."
    )
    parser.add_argument("--version", action="version", version=f"emporion {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in subcommand_modules(people_only):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emporion`` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        ns = build_parser(people_only=bool(args) and args[0] in PEOPLE_COMMANDS).parse_args(args)
        status: int = ns.func(ns)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop writing, and keep Python from complaining
        # about the stdout it cannot flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
