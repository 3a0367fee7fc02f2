"""The ``emporion`` command line.

Each subcommand lives in its own module under ``emporion.commands`` (the commands for people,
``run``, ``status``, ``tasks``, ``logs`` ..., under ``emporion.commands.ops``) and exposes
``register(subparsers)``; this module only assembles them. A subcommand is a function taking the
parsed arguments and returning an exit status; bad input prints one line naming what is wrong and
exits with status 2, as argparse does. Ctrl-C ends any subcommand with status 130 and no
traceback (commands that own something to clean up, such as ``run``, do so first); a closed
output pipe (``emporion tasks | head``) ends it quietly too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from emporion.commands import agent, local, master, ops, resources

SUBCOMMANDS = (master, agent, local, resources, *ops.MODULES)

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""


def _version() -> str:
    try:
        return metadata.version("emporion")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="emporion", description="Emporion: a two-level, offer-based resource scheduler."
    )
    parser.add_argument("--version", action="version", version=f"emporion {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emporion`` console script."""
    try:
        ns = build_parser().parse_args(argv)
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
