"""``emporion explain FRAMEWORK`` and ``emporion teardown FRAMEWORK``.

``explain`` asks the allocator why a framework received nothing, or less than it could use, in
its last cycle (the operator API's GET_EXPLANATION, :mod:`master.allocator.explain`): suppressed
offers, its own refuse filters, a quota limit, no agent large enough, DRF ranking, ... One line
per reason, or a line saying it got what it could use. ``teardown`` ends a framework and kills
its tasks (TEARDOWN), as the web UI's *Tear down* does. A framework is named by id, or by name
when exactly one live framework has it.
"""

from __future__ import annotations

import argparse
from typing import Any

from emporion.client.operator import framework_id, framework_name
from emporion.commands.ops.common import Session, add_command, print_json, show

__all__ = ["register"]


def cmd_explain(ns: argparse.Namespace, session: Session) -> int:
    """Print why the framework gets no (or few) offers."""
    framework = session.operator.find_framework(ns.framework)
    fid, name = framework_id(framework), framework_name(framework)
    answer = session.operator.explanation(fid)
    explanations = answer.get("explanations", [])
    if ns.json:
        print_json({"framework_id": fid, "name": name, **answer})
        return 0
    cycle = answer.get("cycle")
    lines = [f"Framework {fid} ({name}), allocation cycle {cycle}:"]
    if not explanations:
        lines.append("  it received what it could use: nothing keeps offers from it.")
    for item in explanations:
        lines.append(f"  {item.get('code', '?')}: {item.get('message', '')}")
    show(*lines)
    return 0


def cmd_teardown(ns: argparse.Namespace, session: Session) -> int:
    """End the framework and kill its tasks."""
    framework = session.operator.find_framework(ns.framework, completed=False)
    fid, name = framework_id(framework), framework_name(framework)
    session.operator.teardown(fid)
    if ns.json:
        print_json({"framework_id": fid, "name": name, "torn_down": True})
    else:
        show(f"Framework {fid} ({name}) torn down; its tasks are being killed.")
    return 0


def register(subparsers: Any) -> None:
    """Add ``explain`` and ``teardown``."""
    explain = add_command(
        subparsers,
        "explain",
        cmd_explain,
        help="why a framework gets no offers (the allocator's explanation)",
    )
    explain.add_argument("framework", metavar="FRAMEWORK", help="the framework's id or name")
    teardown = add_command(
        subparsers, "teardown", cmd_teardown, help="end a framework and kill its tasks"
    )
    teardown.add_argument("framework", metavar="FRAMEWORK", help="the framework's id or name")
