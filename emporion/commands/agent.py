"""``emporion agent``: run an Emporion agent (the same as ``python -m agent``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agent.config import ConfigError, add_agent_arguments, config_from_namespace
from agent.runtime.main import run

__all__ = ["cmd_agent", "register"]


def cmd_agent(ns: argparse.Namespace) -> int:
    """Run the agent with the parsed flags; exit status 2 on bad configuration."""
    try:
        config = config_from_namespace(ns, os.environ)
    except ConfigError as error:
        print(f"emporion agent: {error}", file=sys.stderr)
        return 2
    return run(config)


def register(subparsers: Any) -> None:
    """Add the ``agent`` subcommand to the ``emporion`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "agent",
        help="run an agent that offers this host's resources to a master",
        description=(
            "Run an Emporion agent. Every flag may also be given as an EMPORION_* variable"
            " (--work-dir as EMPORION_WORK_DIR). SIGTERM/SIGINT stop it so that it can restart"
            " and recover its tasks; SIGUSR1 shuts it down for good, killing its tasks."
        ),
    )
    add_agent_arguments(parser)
    parser.set_defaults(func=cmd_agent)
