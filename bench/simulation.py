"""Deterministic simulation of a whole cluster over many seeds (``emporion.testing.simulation``).

``python -m bench.simulation --seeds N [--start S] [--jobs J]`` runs seeds S..S+N-1 and prints
one JSON object: ``seeds``, ``violations``, ``seeds_per_s``, ``wall_s``, simulated ``steps``
and ``simulated_s``, ``tasks_launched``, ``faults`` per kind, counts of what happened
(``terminal_updates_repeated``: terminal updates a framework saw more than once), and for the
first failures their seed, violation and one-line replay command. The first failure is also
shrunk (``--shrink-budget`` runs, 0: off) and its shortest trace printed on stderr.

``python -m bench.simulation --seed N --replay [--keep 3,7,12]`` plays one seed again (only
the given actions, as a shrunk failure names them) and prints its trace on stderr and its
outcome as JSON.

A run depends on its seed alone, and on the order in which Python iterates sets of strings,
which ``PYTHONHASHSEED`` fixes: the command re-executes itself with ``PYTHONHASHSEED`` set to
``--hash-seed`` (default 0), so a replay command reproduces its run on any machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from multiprocessing import get_context
from typing import Any

from bench._common import emit, machine
from emporion.testing.simulation import Outcome, run_seed
from emporion.testing.simulation.shrinker import shrink
from emporion.testing.simulation.workload import FAULT_KINDS, make_scenario

MAX_REPORTED = 20
"""Failures listed in the JSON object."""


def replay_command(
    seed: int, hash_seed: int, keep: frozenset[int] | None = None, validate: bool = True
) -> str:
    """The one-line command that plays ``seed`` again."""
    command = f"python -m bench.simulation --seed {seed} --replay"
    if not validate:
        command += " --no-validate"
    if keep is not None:
        command += f" --keep {','.join(str(i) for i in sorted(keep)) or 'none'}"
    if hash_seed != 0:
        command += f" --hash-seed {hash_seed}"
    return command


def _run(seed: int, validate: bool = True) -> Outcome:
    outcome = run_seed(seed, validate_every_step=validate)
    outcome.trace = outcome.trace if outcome.violation is not None else []
    return outcome


def _parse_keep(text: str | None) -> frozenset[int] | None:
    """``--keep``'s action indexes; raises ValueError naming what is wrong."""
    if text is None:
        return None
    if text == "none":
        return frozenset()
    try:
        indexes = frozenset(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"--keep: expected comma-separated action indexes (or 'none'), got {text[:80]!r}"
        ) from None
    if any(i < 0 for i in indexes):
        raise ValueError(f"--keep: action indexes are >= 0, got {text[:80]!r}")
    return indexes


def _print_trace(title: str, outcome: Outcome) -> None:
    sys.stderr.write(f"--- {title} ---\n")
    for line in outcome.trace:
        sys.stderr.write(f"{line}\n")


def replay(seed: int, keep: frozenset[int] | None, hash_seed: int, validate: bool) -> int:
    """Play one seed; print its trace (stderr) and outcome (stdout)."""
    scenario = make_scenario(seed)
    outcome = run_seed(seed, keep, validate_every_step=validate)
    _print_trace(f"seed {seed} ({len(scenario.keep(keep).actions)} actions)", outcome)
    emit(
        {
            "seed": seed,
            "violation": str(outcome.violation) if outcome.violation else None,
            "actions": outcome.actions,
            "steps": outcome.steps,
            "simulated_s": round(outcome.simulated_seconds, 3),
            "counts": dict(sorted(outcome.counts.items())),
            "replay": replay_command(seed, hash_seed, keep, validate),
        }
    )
    return 1 if outcome.violation else 0


def many(
    start: int, count: int, *, jobs: int, shrink_budget: int, hash_seed: int, validate: bool
) -> int:
    """Run ``count`` seeds from ``start``; print the JSON figures."""
    seeds = range(start, start + count)
    began = time.perf_counter()
    run = partial(_run, validate=validate)
    if jobs > 1:
        with get_context("fork").Pool(jobs) as pool:
            outcomes = pool.map(run, seeds, chunksize=max(1, count // (jobs * 8)))
    else:
        outcomes = [run(seed) for seed in seeds]
    wall = time.perf_counter() - began
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        totals.update(outcome.counts)
    failures = [o for o in outcomes if o.violation is not None]
    figures: dict[str, Any] = {
        "seeds": count,
        "start": start,
        "violations": len(failures),
        "seeds_per_s": round(count / wall, 2) if wall else None,
        "wall_s": round(wall, 2),
        "jobs": jobs,
        "hash_seed": hash_seed,
        "steps": sum(o.steps for o in outcomes),
        "simulated_s": round(sum(o.simulated_seconds for o in outcomes), 1),
        "tasks_launched": totals["tasks_launched"],
        "updates_seen": totals["updates_seen"],
        "terminal_updates_repeated": totals["terminal_updates_repeated"],
        "faults": {k: totals[f"action_{k}"] for k in sorted(FAULT_KINDS)},
        "violation_kinds": dict(Counter(o.violation.kind for o in failures if o.violation)),
        "failures": [
            {
                "seed": o.seed,
                "violation": str(o.violation),
                "replay": replay_command(o.seed, hash_seed, None, validate),
            }
            for o in failures[:MAX_REPORTED]
        ],
        "machine": machine(),
    }
    if failures and shrink_budget > 0:
        first = failures[0]
        assert first.violation is not None
        shrunk = shrink(
            first.seed,
            first.violation,
            budget=shrink_budget,
            run=lambda seed, keep: run_seed(seed, keep, validate_every_step=validate),
        )
        if shrunk is not None:
            command = replay_command(shrunk.seed, hash_seed, shrunk.keep, validate)
            figures["shrunk"] = {
                "seed": shrunk.seed,
                "actions": len(shrunk.keep),
                "of": first.actions,
                "runs": shrunk.runs,
                "violation": str(shrunk.outcome.violation),
                "replay": command,
            }
            _print_trace(f"seed {shrunk.seed}, shrunk: {command}", shrunk.outcome)
    emit(figures)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.simulation", description=__doc__)
    parser.add_argument("--seeds", type=int, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--seed", type=int, help="one seed to play (with --replay)")
    parser.add_argument("--replay", action="store_true", help="play --seed and print its trace")
    parser.add_argument("--keep", help="with --replay: only these action indexes (a,b,c)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument(
        "--shrink-budget", type=int, default=150, help="runs to shrink the first failure (0: off)"
    )
    parser.add_argument("--hash-seed", type=int, default=0, help="PYTHONHASHSEED (default 0)")
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the cores' invariant checks after every step (faster; finds only what"
        " surfaces as an exception, an error log or at the end)",
    )
    args = parser.parse_args(argv)
    if args.hash_seed < 0 or args.hash_seed > 4294967295:
        parser.error(f"--hash-seed: must be in 0..4294967295, got {args.hash_seed}")
    if os.environ.get("PYTHONHASHSEED") != str(args.hash_seed):
        env = {**os.environ, "PYTHONHASHSEED": str(args.hash_seed)}
        arguments = list(sys.argv[1:] if argv is None else argv)
        os.execve(sys.executable, [sys.executable, "-m", "bench.simulation", *arguments], env)
    if args.replay or args.seed is not None:
        if args.seed is None or not args.replay:
            parser.error("--seed and --replay go together")
        try:
            keep = _parse_keep(args.keep)
        except ValueError as error:
            parser.error(str(error))
        return replay(args.seed, keep, args.hash_seed, not args.no_validate)
    if args.seeds is None or args.seeds < 1:
        parser.error("--seeds N (N >= 1) or --seed N --replay is required")
    if args.jobs < 1:
        parser.error(f"--jobs: must be at least 1, got {args.jobs}")
    if args.keep is not None:
        parser.error("--keep goes with --seed N --replay")
    return many(
        args.start,
        args.seeds,
        jobs=args.jobs,
        shrink_budget=args.shrink_budget,
        hash_seed=args.hash_seed,
        validate=not args.no_validate,
    )


if __name__ == "__main__":
    raise SystemExit(main())
