"""``emporion status``, ``emporion agents``, ``emporion frameworks``: the cluster at a glance.

``status`` reads GET_MASTER and GET_METRICS (the same figures as ``/metrics/snapshot``): the
leader, agents, frameworks, resources used of the total and tasks by state. Terminal states
count tasks that reached them since this master took the lead, as Mesos's counters do.
``agents`` and ``frameworks`` are tables of GET_AGENTS and GET_FRAMEWORKS; with ``--json`` each
prints the operator API's answer itself.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from emporion.client.operator import framework_id, framework_name
from emporion.commands.ops.common import (
    Session,
    add_command,
    print_json,
    quantity,
    short_state,
    show,
    timestamp,
)
from protos.leader_info import format_address

__all__ = ["register"]

RESOURCES = ("cpus", "mem", "disk", "gpus")
ACTIVE_STATES = ("staging", "starting", "running", "killing", "unreachable")
ENDED_STATES = ("finished", "failed", "killed", "lost", "error", "dropped", "gone")


def _grpc_address(info: dict[str, Any]) -> str:
    """The gRPC ``host:port`` a MasterInfo (JSON) names ("" if none)."""
    address = info.get("address", {})
    host = address.get("ip") or address.get("hostname") or info.get("hostname", "")
    port = address.get("port") or info.get("port")
    return format_address(host, int(port)) if host and port else ""


def status_document(session: Session) -> dict[str, Any]:
    """What ``emporion status`` shows, as plain data (its ``--json``)."""
    master = session.operator.master()  # leader-only: a follower sends it to the leader ...
    metrics = session.operator.metrics()  # ... where every later call goes (followers answer this)
    info = master.get("master_info", {})

    def count(name: str) -> int:
        return int(metrics.get(f"master/{name}", 0.0))

    return {
        "leader": {
            "id": info.get("id", ""),
            "address": _grpc_address(info) or session.endpoints.grpc,
            "http_address": session.operator.answered_by,
            "version": info.get("version", ""),
            "start_time": master.get("start_time"),
            "elected_time": master.get("elected_time"),
        },
        "agents": {
            phase: count(f"slaves_{phase}")
            for phase in ("connected", "disconnected", "unreachable")
        },
        "frameworks": {
            phase: count(f"frameworks_{phase}")
            for phase in ("active", "inactive", "connected", "disconnected")
        },
        "outstanding_offers": count("outstanding_offers"),
        "resources": {
            name: {
                "total": metrics.get(f"master/{name}_total", 0.0),
                "used": metrics.get(f"master/{name}_used", 0.0),
            }
            for name in RESOURCES
        },
        "tasks": {
            f"TASK_{state.upper()}": count(f"tasks_{state}")
            for state in (*ACTIVE_STATES, *ENDED_STATES)
        },
    }


def cmd_status(ns: argparse.Namespace, session: Session) -> int:
    """Print the leader, agents, frameworks, resources and tasks by state."""
    doc = status_document(session)
    if ns.json:
        print_json(doc)
        return 0
    leader, agents, frameworks = doc["leader"], doc["agents"], doc["frameworks"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row(
        "Leader",
        f"{leader['id']} at {leader['address']} (HTTP {leader['http_address']}),"
        f" version {leader['version']}, leading since {timestamp(leader['elected_time'])}",
    )
    head.add_row(
        "Agents",
        f"{agents['connected']} connected, {agents['disconnected']} disconnected,"
        f" {agents['unreachable']} unreachable",
    )
    head.add_row(
        "Frameworks",
        f"{frameworks['active']} active, {frameworks['inactive']} inactive;"
        f" {doc['outstanding_offers']} outstanding offer(s)",
    )
    resources = Table(box=None, pad_edge=False)
    for column in ("RESOURCE", "USED", "TOTAL", "USED %"):
        resources.add_column(column, justify="left" if column == "RESOURCE" else "right")
    for name, amounts in doc["resources"].items():
        total, used = amounts["total"], amounts["used"]
        share = f"{100 * used / total:.0f}%" if total else "-"
        resources.add_row(name, quantity(used), quantity(total), share)
    tasks = Table(box=None, pad_edge=False)
    tasks.add_column("TASK STATE")
    tasks.add_column("TASKS", justify="right")
    for state, number in doc["tasks"].items():
        if number or state in ("TASK_RUNNING", "TASK_STAGING"):
            tasks.add_row(short_state(state), str(number))
    note = "(tasks that ended: counted since this master took the lead)"
    show(head, "", resources, "", tasks, note)
    return 0


def _used_of_total(summary: dict[str, Any], name: str) -> str:
    used = float(summary.get("allocated", {}).get(name, 0.0))
    total = float(summary.get("total", {}).get(name, 0.0))
    return f"{quantity(used)}/{quantity(total)}"


def cmd_agents(ns: argparse.Namespace, session: Session) -> int:
    """Print every agent the master knows: address, phase, resources in use of its total,
    tasks. Unreachable agents too (GET_AGENTS's ``phase: any``; without it Mesos's answer leaves
    them out), so an agent that died does not vanish from the table."""
    answer = session.operator.agents(phase="any")
    if ns.json:
        print_json(answer)
        return 0
    table = Table(box=None, pad_edge=False)
    table.add_column("ID", overflow="fold")
    for column in ("HOST", "PHASE", "CPUS", "MEM", "DISK", "GPUS", "TASKS", "REGISTERED"):
        table.add_column(column)
    for agent in answer.get("agents", []):
        info, summary = agent.get("agent_info", {}), agent.get("summary", {})
        table.add_row(
            info.get("id", {}).get("value", ""),
            f"{info.get('hostname', '')}:{info.get('port', '')}",
            str(summary.get("phase", "")),
            *(_used_of_total(summary, name) for name in RESOURCES),
            str(summary.get("tasks", 0)),
            timestamp(agent.get("registered_time")),
        )
    show(table)
    return 0


def _task_counts(summary: dict[str, Any]) -> str:
    tasks = summary.get("tasks", {})
    if isinstance(tasks, dict):
        live = ", ".join(f"{n} {short_state(s).lower()}" for s, n in tasks.items() if n)
    else:
        live = str(tasks)
    done = summary.get("completed_tasks", 0)
    return ", ".join(part for part in (live, f"{done} ended" if done else "") if part) or "0"


def cmd_frameworks(ns: argparse.Namespace, session: Session) -> int:
    """Print the frameworks (``--all``: the completed ones too)."""
    answer = session.operator.frameworks(include_completed=ns.all)
    if ns.json:
        print_json(answer)
        return 0
    table = Table(box=None, pad_edge=False)
    table.add_column("ID", overflow="fold")
    for column in ("NAME", "ROLES", "PHASE", "TASKS", "CPUS", "MEM", "REGISTERED"):
        table.add_column(column)
    every = [*answer.get("frameworks", []), *answer.get("completed_frameworks", [])]
    for framework in every:
        summary = framework.get("summary", {})
        roles = summary.get("roles") or framework.get("framework_info", {}).get("roles", [])
        allocated = summary.get("allocated", {})
        phase = str(summary.get("phase", ""))
        if summary.get("suppressed_roles"):
            phase += " (suppressed)"
        table.add_row(
            framework_id(framework),
            framework_name(framework),
            ",".join(roles),
            phase,
            _task_counts(summary),
            quantity(float(allocated.get("cpus", 0.0))),
            quantity(float(allocated.get("mem", 0.0))),
            timestamp(framework.get("registered_time")),
        )
    show(table)
    return 0


def register(subparsers: Any) -> None:
    """Add ``status``, ``agents`` and ``frameworks``."""
    add_command(
        subparsers,
        "status",
        cmd_status,
        help="the leader, agents, frameworks, resources and tasks by state",
    )
    add_command(subparsers, "agents", cmd_agents, help="list the agents and what they hold")
    frameworks = add_command(subparsers, "frameworks", cmd_frameworks, help="list the frameworks")
    frameworks.add_argument(
        "--all", action="store_true", help="include completed (torn down) frameworks"
    )
