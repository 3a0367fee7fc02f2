"""``emporion resources``: check an agent resource string and print its canonical form."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.protobuf import json_format

from protos.resources import Resources, likely_typos

__all__ = ["cmd_resources", "register"]


def cmd_resources(ns: argparse.Namespace) -> int:
    """Parse the text; print its canonical form (or Mesos JSON with --json); 2 on bad input."""
    try:
        parsed = Resources.parse(ns.text)
    except ValueError as exc:
        print(f"emporion resources: {exc}", file=sys.stderr)
        return 2
    for warning in likely_typos(parsed):
        print(f"emporion resources: warning: {warning}", file=sys.stderr)
    if ns.json:
        items = [
            json_format.MessageToDict(r, preserving_proto_field_name=True)
            for r in parsed.to_protos()
        ]
        print(json.dumps(items, indent=2))
    else:
        print(parsed)
    return 0


def register(subparsers: Any) -> None:
    """Add the ``resources`` subcommand to the ``emporion`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "resources",
        help="check an agent resource string and print its canonical form",
        description="Check a resource string such as 'cpus:4;mem:4096;ports:[31000-32000]'.",
    )
    parser.add_argument("text", help="resources in the Mesos agent text format")
    parser.add_argument("--json", action="store_true", help="print the Mesos JSON form instead")
    parser.set_defaults(func=cmd_resources)
