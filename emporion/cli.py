"""The ``emporion`` command line.

Subcommands are added by the components as they arrive (``master``, ``agent``, ``local``, ...).
Each subcommand is a function taking the parsed arguments and returning an exit status; errors
in user input print one line naming what is wrong and exit with status 2, as argparse does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import metadata

from google.protobuf import json_format

from protos.resources import Resources


def _version() -> str:
    try:
        return metadata.version("emporion")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def cmd_resources(ns: argparse.Namespace) -> int:
    """Parse an agent resource string; print its canonical form (or Mesos JSON with --json)."""
    try:
        parsed = Resources.parse(ns.text)
    except ValueError as exc:
        print(f"emporion resources: {exc}", file=sys.stderr)
        return 2
    if ns.json:
        items = [
            json_format.MessageToDict(r, preserving_proto_field_name=True)
            for r in parsed.to_protos()
        ]
        print(json.dumps(items, indent=2))
    else:
        print(parsed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="emporion", description="Emporion: a two-level, offer-based resource scheduler."
    )
    parser.add_argument("--version", action="version", version=f"emporion {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    res = sub.add_parser(
        "resources",
        help="check an agent resource string and print its canonical form",
        description="Check a resource string such as 'cpus:4;mem:4096;ports:[31000-32000]'.",
    )
    res.add_argument("text", help="resources in the Mesos agent text format")
    res.add_argument("--json", action="store_true", help="print the Mesos JSON form instead")
    res.set_defaults(func=cmd_resources)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emporion`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    status: int = ns.func(ns)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
