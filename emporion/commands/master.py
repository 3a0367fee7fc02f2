"""``emporion master``: run an Emporion master (the same as ``python -m master``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from master.config import ConfigError, add_arguments, config_from_namespace
from master.runtime import run

__all__ = ["cmd_master", "register"]


def cmd_master(ns: argparse.Namespace) -> int:
    """Run the master with the parsed flags; exit status 2 on bad configuration."""
    try:
        config = config_from_namespace(ns, os.environ)
    except ConfigError as error:
        print(f"emporion master: {error}", file=sys.stderr)
        return 2
    return run(config)


def register(subparsers: Any) -> None:
    """Add the ``master`` subcommand to the ``emporion`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "master",
        # The full list is long: --help shows it; an error needs only this line above it.
        usage="%(prog)s [--zk URL | --work-dir DIR] [--host HOST] [--port PORT] [options]",
        help="run a master that pools agents' resources and offers them to frameworks",
        description=(
            "Run an Emporion master serving the scheduler API and the agent gateway over gRPC,"
            " and the HTTP API (docs/http-api.md) on --http-port (8080; 'off' for none)."
            " Every flag may also be given as an EMPORION_* variable (--work-dir as"
            " EMPORION_WORK_DIR). It prints 'Emporion master <id> listening on HOST:PORT"
            " (http HOST:HTTPPORT)' once it serves; SIGTERM/SIGINT stop it."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=cmd_master)
