"""Run one chaos scenario end to end and report it as one flat dictionary (a JSON object).

Every report has the same keys first: ``scenario``, ``size``, ``ok``, ``tasks``, ``tasks_lost``,
``terminal_missing``, ``duplicate_terminal_updates``, ``leaked_processes``, ``leaked_cgroups``,
``leaked_run_dirs``, then the scenario's own time figures, then ``error`` and, when not ``ok``,
what the master answered about the tasks still missing (``missing_reconciled``: answers counted,
the first ten by task), the log lines
naming the first lost or missing tasks (``task_log_lines``), the first distinct error lines of
every process's log (``log_errors``) and where the logs were copied (``logs_kept``).

``ok`` means nothing was lost, no terminal update is missing, nothing leaked and the scenario
ran to its end. Duplicates are reported, not judged: at-least-once delivery allows them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from emporion.testing.chaos.cluster import ChaosCluster
from emporion.testing.chaos.framework import RecordingFramework
from emporion.testing.chaos.scenarios import SCENARIOS, Run

__all__ = ["SIZES", "UnknownScenarioError", "run_scenario", "scenario_params"]

SIZES = ("ci", "full")
COMMON_PARAMS = ("settle_timeout", "quiet_timeout", "suppress")
"""Parameters every scenario takes: seconds to wait for the last terminal update (120), seconds
without any update before giving up (30), and whether the framework suppresses offers once its
tasks are launched (1) or keeps declining them (0, the default)."""


class UnknownScenarioError(ValueError):
    """A scenario name, size or parameter that does not exist; the message lists the valid ones."""


def scenario_params(
    name: str, size: str = "ci", overrides: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The parameters of scenario ``name`` at ``size``, with ``overrides`` applied."""
    if name not in SCENARIOS:
        raise UnknownScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if size not in SIZES:
        raise UnknownScenarioError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    scenario = SCENARIOS[name]
    params = dict(scenario.ci if size == "ci" else scenario.full)
    for key, value in (overrides or {}).items():
        if key not in params and key not in COMMON_PARAMS:
            raise UnknownScenarioError(
                f"scenario {name!r} has no parameter {key!r}; it has: {', '.join(params)},"
                f" {', '.join(COMMON_PARAMS)}"
            )
        params[key] = value
    return params


def run_scenario(
    name: str, size: str = "ci", overrides: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """Run scenario ``name`` once on a fresh cluster; its report."""
    params = scenario_params(name, size, overrides)
    scenario = SCENARIOS[name]
    started = time.monotonic()
    cluster = ChaosCluster(
        agent_resources=f"cpus:{params['cpus']:g};mem:4096;disk:1024", **scenario.cluster
    )
    run = Run(cluster, params)
    error: str | None = None
    missing_reconciled: dict[str, str] = {}
    summaries: list[dict[str, Any]] = []
    try:
        try:
            cluster.start()
            scenario.body(run, params)
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"
        for framework in run.frameworks:
            summaries.append(run.loop.query(framework.summary))
            if summaries[-1]["terminal_missing"]:
                missing_reconciled.update(_reconcile(run, framework))
        for framework in run.frameworks:
            try:
                run.loop.run(framework.close(), 30.0)
            except Exception as failure:
                error = error or f"closing {framework.name}: {type(failure).__name__}: {failure}"
        run.loop.close()
        leaks = cluster.close()
        counts = _merge(summaries)
        ok = (
            error is None
            and counts["tasks_lost"] == 0
            and counts["terminal_missing"] == 0
            and leaks.total == 0
        )
        diagnosis: dict[str, Any] = {}
        if not ok:
            suspects = [*counts["lost_examples"], *counts["missing_examples"]][:4]
            diagnosis = {
                "logs_kept": str(cluster.keep_logs()),
                "task_log_lines": cluster.lines_mentioning(suspects),
                "log_errors": cluster.error_lines(),
            }
    finally:
        # Also on SIGTERM (SystemExit) or ^C: nothing of the run may outlive it.
        run.loop.close()
        cluster.remove()
    report: dict[str, Any] = {
        "scenario": name,
        "size": size,
        "ok": ok,
        **counts,
        "leaked_processes": len(leaks.processes),
        "leaked_cgroups": len(leaks.cgroups),
        "leaked_run_dirs": len(leaks.run_dirs),
        **run.figures,
        "wall_s": round(time.monotonic() - started, 3),
        "isolation": cluster.isolation,
        "params": params,
        "error": error,
    }
    if not ok:
        answers = Counter(missing_reconciled.values())
        report["missing_reconciled"] = {
            "answers": dict(answers.most_common()),
            "examples": dict(list(missing_reconciled.items())[:10]),
        }
        report["leaks"] = {
            "processes": leaks.processes[:10],
            "cgroups": leaks.cgroups[:10],
            "run_dirs": leaks.run_dirs[:10],
        }
        report.update(diagnosis)
    return report


def _reconcile(run: Run, framework: RecordingFramework) -> dict[str, str]:
    try:
        return run.loop.run(framework.reconcile_unsettled(), 10.0)
    except Exception as failure:  # diagnostics only: the counts are already taken
        return {"(reconcile failed)": f"{type(failure).__name__}: {failure}"}


def _merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "tasks": 0,
        "tasks_lost": 0,
        "terminal_missing": 0,
        "duplicate_terminal_updates": 0,
        "tasks_with_duplicates": 0,
        "relaunched_after_failed_call": 0,
        "terminal_states": {},
        "lost_reasons": {},
        "lost_examples": {},
        "missing_examples": {},
        "duplicate_examples": {},
    }
    for summary in summaries:
        for key in (
            "tasks",
            "tasks_lost",
            "terminal_missing",
            "duplicate_terminal_updates",
            "tasks_with_duplicates",
            "relaunched_after_failed_call",
        ):
            counts[key] += summary[key]
        for state, number in summary["terminal_states"].items():
            counts["terminal_states"][state] = counts["terminal_states"].get(state, 0) + number
        for reason, number in summary["lost_reasons"].items():
            counts["lost_reasons"][reason] = counts["lost_reasons"].get(reason, 0) + number
        counts["lost_examples"].update(summary["lost_examples"])
        counts["missing_examples"].update(summary["missing_examples"])
        counts["duplicate_examples"].update(summary["duplicate_examples"])
    return counts
