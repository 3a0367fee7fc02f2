"""``emporion tasks``, ``emporion task ID`` and ``emporion logs ID``: tasks and their output.

``tasks`` is a table of GET_TASKS (live and unreachable tasks; ``--all`` adds the completed ones
the master keeps). ``task`` describes one task as ``kubectl describe`` does: every status with
its source, reason and message, the resources, the agent and where its sandbox is. ``logs``
prints a task's stdout (``--stderr``: its stderr) through the master's sandbox proxy, and with
``-f`` follows it until the task ends. Task ids are unique per framework only: ``--framework``
picks one when two frameworks have the same id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from typing import Any

import httpx
from rich.table import Table

from emporion.client import MasterEndpoints, SandboxFile, follow, read_all, tasks_of
from emporion.client.operator import MAX_PAGE, framework_id, framework_name
from emporion.commands.ops.common import (
    Session,
    add_command,
    print_json,
    short_state,
    show,
    timestamp,
)

__all__ = ["TERMINAL_STATES", "command_text", "register", "resources_of", "sandbox_path"]

TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)
"""States a task never leaves (Mesos's terminal states)."""

STATE_POLL = 1.0
"""Seconds between looks at a followed task's state."""


def state_name(text: str) -> str:
    """``TASK_RUNNING`` for ``running``, ``Running`` or ``TASK_RUNNING``."""
    upper = text.strip().upper()
    return upper if upper.startswith("TASK_") else f"TASK_{upper}"


def resources_of(resources: list[dict[str, Any]]) -> str:
    """``cpus:0.1 mem:32 ports:[31000-31001]`` from a list of Resource objects in JSON."""
    scalars: dict[str, float] = {}
    others: list[str] = []
    for item in resources:
        name = str(item.get("name", "?"))
        if "scalar" in item:
            scalars[name] = scalars.get(name, 0.0) + float(item["scalar"].get("value", 0.0))
        elif "ranges" in item:
            spans = [f"{r.get('begin')}-{r.get('end')}" for r in item["ranges"].get("range", [])]
            others.append(f"{name}:[{','.join(spans)}]")
        elif "set" in item:
            others.append(f"{name}:{{{','.join(item['set'].get('item', []))}}}")
    parts = [f"{name}:{value:g}" for name, value in scalars.items()]
    return " ".join([*parts, *others]) or "-"


def command_text(task: dict[str, Any]) -> str:
    """The task's command as a person would type it ("" for a task with an executor)."""
    command = task.get("command") or {}
    if not command:
        return ""
    if command.get("shell", True):
        return str(command.get("value", ""))
    argv = list(command.get("arguments") or [command.get("value", "")])
    return shlex.join(str(arg) for arg in argv)


def sandbox_path(task: dict[str, Any]) -> str:
    """The sandbox's path in the agent's file API (a command task's executor id is its id)."""
    executor = task.get("executor_id", {}).get("value") or task["task_id"]["value"]
    return f"/frameworks/{task['framework_id']['value']}/executors/{executor}/runs/latest"


def _names(session: Session) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Framework names by id and agent infos by id, for tables."""
    frameworks = session.operator.frameworks(include_completed=True)
    names = {
        framework_id(f): framework_name(f)
        for key in ("frameworks", "completed_frameworks")
        for f in frameworks.get(key, [])
    }
    agents = {
        a["agent_info"]["id"]["value"]: a["agent_info"]
        for a in session.operator.agents().get("agents", [])
    }
    return names, agents


def _last(task: dict[str, Any]) -> dict[str, Any]:
    statuses = task.get("statuses") or [{}]
    last: dict[str, Any] = statuses[-1]
    return last


def cmd_tasks(ns: argparse.Namespace, session: Session) -> int:
    """Print the tasks (live ones; ``--all`` adds completed ones), newest first."""
    filters: dict[str, Any] = {"limit": ns.limit, "order": "desc"}
    filters["include"] = ["tasks", "unreachable_tasks"] + (["completed_tasks"] if ns.all else [])
    if ns.state:
        filters["state"] = state_name(ns.state)
    if ns.framework:
        filters["framework_id"] = framework_id(session.operator.find_framework(ns.framework))
    answer = session.operator.tasks(**filters)
    tasks = tasks_of(answer)
    if ns.json:
        print_json(tasks)
        return 0
    names, agents = _names(session)
    table = Table(box=None, pad_edge=False)
    table.add_column("ID", overflow="fold")
    for column in ("FRAMEWORK", "STATE", "AGENT", "RESOURCES", "STARTED", "UPDATED"):
        table.add_column(column)
    for task in tasks:
        agent = agents.get(task.get("agent_id", {}).get("value", ""), {})
        statuses = task.get("statuses") or [{}]
        table.add_row(
            task["task_id"]["value"],
            names.get(task["framework_id"]["value"]) or task["framework_id"]["value"],
            short_state(str(task.get("state", ""))),
            str(agent.get("hostname", task.get("agent_id", {}).get("value", "-"))),
            resources_of(task.get("resources", [])),
            timestamp(statuses[0].get("timestamp")),
            timestamp(statuses[-1].get("timestamp")),
        )
    total = int(answer.get("total", len(tasks)))
    more = f"({total - len(tasks)} more: --limit N shows more)" if total > len(tasks) else ""
    show(table, *([more] if more else []))
    return 0


def cmd_task(ns: argparse.Namespace, session: Session) -> int:
    """Describe one task: statuses with reasons and messages, resources, agent, sandbox."""
    task = session.operator.find_task(ns.task_id, ns.framework)
    names, agents = _names(session)
    fid = task["framework_id"]["value"]
    agent_id = task.get("agent_id", {}).get("value", "")
    agent = agents.get(agent_id, {})
    where = f"{agent.get('hostname')}:{agent.get('port')}" if agent else ""
    if ns.json:
        print_json(
            {
                "task": task,
                "framework": {"id": fid, "name": names.get(fid, "")},
                "agent": {"id": agent_id, "hostname": agent.get("hostname"),
                          "port": agent.get("port")},
                "sandbox": sandbox_path(task),
            }
        )  # fmt: skip
        return 0
    last = _last(task)
    rows = [
        ("Task", task["task_id"]["value"]),
        ("Name", task.get("name", "")),
        ("Framework", f"{fid} ({names.get(fid, '?')})"),
        ("State", str(task.get("state", ""))),
        ("Reason", str(last.get("reason", "-"))),
        ("Message", str(last.get("message", "-"))),
        ("Agent", f"{agent_id} ({where})" if where else agent_id or "-"),
        ("Role", str(task.get("role", "-"))),
        ("Resources", resources_of(task.get("resources", []))),
        ("Command", command_text(task) or "-"),
        ("Executor", task.get("executor_id", {}).get("value", "") or "(command executor)"),
        ("Sandbox", f"{sandbox_path(task)} (emporion logs {task['task_id']['value']})"),
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(f"{label}:", value)
    statuses = Table(title="Statuses", title_justify="left", box=None, pad_edge=False)
    for column in ("TIME", "STATE", "SOURCE", "REASON", "MESSAGE"):
        statuses.add_column(column, overflow="fold")
    for status in task.get("statuses", []):
        statuses.add_row(
            timestamp(status.get("timestamp")),
            short_state(str(status.get("state", ""))),
            str(status.get("source", "")).removeprefix("SOURCE_"),
            str(status.get("reason", "")).removeprefix("REASON_"),
            str(status.get("message", "")),
        )
    show(grid, "", statuses)
    return 0


async def _watch_state(
    endpoints: MasterEndpoints, framework: str, task_id: str, ended: asyncio.Event
) -> None:
    """Set ``ended`` once the task is in a terminal state (or the master forgot it)."""
    body = {"type": "GET_TASKS", "get_tasks": {"framework_id": framework, "task_id": task_id}}
    async with httpx.AsyncClient(
        base_url=endpoints.http_url,
        follow_redirects=True,
        timeout=15.0,
        **endpoints.http_options(),
    ) as client:
        while not ended.is_set():
            try:
                response = await client.post("/api/v1", json=body)
                found = tasks_of(response.json()["get_tasks"]) if response.is_success else None
            except (httpx.HTTPError, ValueError, KeyError):
                found = None  # A moment without the master: look again.
            if found == [] or (found and found[0].get("state") in TERMINAL_STATES):
                ended.set()
                return
            await asyncio.sleep(STATE_POLL)


async def _print_logs(ns: argparse.Namespace, session: Session, task: dict[str, Any]) -> None:
    fid, tid = task["framework_id"]["value"], task["task_id"]["value"]
    path = "stderr" if ns.stderr else "stdout"
    out = sys.stdout

    def emit(chunk: str) -> None:
        if ns.json:
            out.write(json.dumps({"task_id": tid, "stream": path, "data": chunk}) + "\n")
        else:
            out.write(chunk)
        out.flush()

    async with httpx.AsyncClient(
        base_url=session.endpoints.http_url,
        follow_redirects=True,
        timeout=15.0,
        **session.endpoints.http_options(),
    ) as client:
        file = SandboxFile(client, session.endpoints.given, fid, tid, path=path)
        if not ns.follow or task.get("state") in TERMINAL_STATES:
            async for chunk in read_all(file):
                emit(chunk)
            return
        ended = asyncio.Event()
        watcher = asyncio.create_task(_watch_state(session.endpoints, fid, tid, ended))
        try:
            async for chunk in follow(file, ended.is_set):
                emit(chunk)
        finally:
            watcher.cancel()


def cmd_logs(ns: argparse.Namespace, session: Session) -> int:
    """Print a task's stdout or stderr; ``-f`` follows it until the task ends."""
    task = session.operator.find_task(ns.task_id, ns.framework)
    asyncio.run(_print_logs(ns, session, task))
    return 0


def _limit(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_PAGE}, got {text!r}"
        )
    return int(text)


def register(subparsers: Any) -> None:
    """Add ``tasks``, ``task`` and ``logs``."""
    tasks = add_command(subparsers, "tasks", cmd_tasks, help="list tasks, newest first")
    tasks.add_argument("--framework", metavar="ID|NAME", help="only this framework's tasks")
    tasks.add_argument("--state", help="only tasks in this state (running, TASK_FAILED, ...)")
    tasks.add_argument("--all", action="store_true", help="include completed tasks")
    tasks.add_argument(
        "--limit", type=_limit, default=100, metavar="N", help="show at most N tasks, 1-1000 [100]"
    )
    task = add_command(
        subparsers,
        "task",
        cmd_task,
        help="describe a task: statuses with reasons and messages, resources, agent, sandbox",
    )
    task.add_argument("task_id", metavar="ID", help="the task's id")
    task.add_argument("--framework", metavar="ID|NAME", help="the task's framework")
    logs = add_command(
        subparsers, "logs", cmd_logs, help="print a task's stdout (or stderr), through the master"
    )
    logs.add_argument("task_id", metavar="ID", help="the task's id")
    logs.add_argument("--framework", metavar="ID|NAME", help="the task's framework")
    logs.add_argument("--stderr", action="store_true", help="print stderr instead of stdout")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the task ends"
    )
