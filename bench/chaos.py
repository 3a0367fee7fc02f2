"""Chaos: real ZooKeeper, masters, agents and a framework, broken on purpose; what survives.

``python -m bench.chaos [--scenario NAME ...] [--runs N] [--size ci|full] [--set KEY=VALUE ...]``
runs each scenario (all of them by default, in issue 10's order) ``N`` times, each on a fresh
cluster (:mod:`emporion.testing.chaos`), and prints one JSON object per run: tasks lost,
terminal updates missing, duplicate terminal updates, leaked processes, cgroups and
``/run/emporion-*`` entries, and the scenario's time figures in seconds (see docs/chaos.md).
``--size full`` uses issue 10's sizes (60 tasks through three leader kills, 600 tasks through an
agent crash, a 30 s ZooKeeper outage, ...); ``ci`` the small ones of the test suite. ``--set``
overrides one parameter of the chosen scenarios (``--set sleep=10``).

Agents use real cgroups when run as root (``posix`` isolation otherwise). The exit status is 1
if any run was not ``ok`` (something lost, missing or leaked, or the scenario did not finish).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from bench._common import emit, machine
from emporion.testing.chaos.runner import SIZES, UnknownScenarioError, run_scenario
from emporion.testing.chaos.scenarios import SCENARIOS
from emporion.testing.zookeeper import ZooKeeperUnavailableError


def _override(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set wants KEY=VALUE, not {text!r}")
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--set {key}: {value!r} is not a number") from None


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, run the scenarios, print one JSON line per run."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="a scenario to run (repeatable; default: every one)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of each scenario (default 1)")
    parser.add_argument("--size", choices=SIZES, default="ci", help="ci (default) or full")
    parser.add_argument(
        "--set",
        action="append",
        type=_override,
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario parameter",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, not {args.runs}")
    # SIGTERM (a timeout) unwinds like an exception, so every cluster is shut down and swept.
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.CRITICAL)  # the clients' reconnection warnings are expected
    overrides = dict(args.set)
    failed = 0
    for name in args.scenario or list(SCENARIOS):
        for index in range(args.runs):
            try:
                report = run_scenario(name, args.size, overrides)
            except UnknownScenarioError as error:
                parser.error(str(error))
            except ZooKeeperUnavailableError as error:
                print(f"bench.chaos: {name}: ZooKeeper unavailable: {error}", file=sys.stderr)
                return 2
            failed += not report["ok"]
            emit({"benchmark": "chaos", "run": index + 1, **report, "machine": machine()})
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
