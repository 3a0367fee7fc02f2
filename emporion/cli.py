"""The ``emporion`` command line.

Each subcommand lives in its own module under ``emporion.commands`` and exposes
``register(subparsers)``; this module only assembles them. A subcommand is a function taking the
parsed arguments and returning an exit status; bad input prints one line naming what is wrong and
exits with status 2, as argparse does.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata

from emporion.commands import agent, local, master, resources

SUBCOMMANDS = (master, agent, local, resources)


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
    ns = build_parser().parse_args(argv)
    status: int = ns.func(ns)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
