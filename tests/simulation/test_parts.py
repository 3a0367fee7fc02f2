"""The simulator's parts: time, the network's guarantees, determinism, shrinking, the CLI."""

from __future__ import annotations

import random
from functools import partial

import pytest

from emporion.testing.simulation import run_seed
from emporion.testing.simulation.loop import SimLoop
from emporion.testing.simulation.network import CALL_TIMEOUT, Network
from emporion.testing.simulation.runner import Outcome
from emporion.testing.simulation.shrinker import shrink, signature
from emporion.testing.simulation.workload import make_scenario
from emporion.testing.simulation.world import Violation
from tests.simulation.helpers import simulate


def _network() -> tuple[SimLoop, Network]:
    loop = SimLoop()
    net = Network(loop, random.Random(7))
    net.master_up = True
    net.slow_until = loop.now + 100  # Latencies from 0.5 ms to a second: reordering would show.
    return loop, net


def test_loop_runs_callbacks_in_time_order_and_skips_cancelled() -> None:
    loop = SimLoop()
    seen: list[str] = []
    loop.after(2.0, lambda: seen.append("b"))
    loop.after(1.0, lambda: seen.append("a"))
    loop.after(1.0, lambda: seen.append("a2"))
    loop.after(1.5, lambda: seen.append("x")).cancel()
    loop.run_until(loop.now + 3)
    assert seen == ["a", "a2", "b"]
    assert loop.elapsed == 3


def test_a_link_delivers_in_order_and_a_break_loses_what_is_in_flight() -> None:
    loop, net = _network()
    link = net.connect("agent0")
    assert link is not None
    got: list[int] = []
    told: list[str] = []
    link.on_client_closed = lambda: told.append("client")
    link.on_master_closed = lambda: told.append("master")
    for i in range(200):
        link.to_master(partial(got.append, i))
    loop.run_until(loop.now + 0.2)
    delivered = len(got)
    assert got == list(range(delivered))  # In order, none twice, none skipped.
    assert 0 < delivered < 200  # Slow: some still in flight...
    link.cut(noisy=True)
    loop.run_until(loop.now + 5)
    assert got == list(range(delivered))  # ...and lost with the connection.
    assert sorted(told) == ["client", "master"]  # A noisy break is seen by both sides.


def test_a_silent_break_tells_nobody_and_a_partition_refuses_new_links() -> None:
    loop, net = _network()
    link = net.connect("framework0")
    assert link is not None
    told: list[str] = []
    link.on_client_closed = lambda: told.append("client")
    link.on_master_closed = lambda: told.append("master")
    net.partition("framework0", 10.0)
    assert net.connect("framework0") is None
    loop.run_until(loop.now + 9)
    assert told == []
    assert not link.alive
    loop.run_until(loop.now + 2)
    assert net.connect("framework0") is not None  # Healed.


def test_a_call_whose_reply_is_lost_fails_after_the_timeout_though_the_master_took_it() -> None:
    loop, net = _network()
    net.slow_until = 0.0
    taken: list[str] = []
    replies: list[tuple[str, float]] = []
    sent = loop.now

    def handle() -> tuple[str, str]:
        taken.append("call")
        net.partition("framework0", 30.0)  # The reply cannot come back.
        return "OK", ""

    net.call("framework0", handle, lambda code, _: replies.append((code, loop.now)))
    loop.run_until(loop.now + 10)
    assert taken == ["call"]
    assert [code for code, _ in replies] == ["UNAVAILABLE"]
    assert replies[0][1] == pytest.approx(sent + CALL_TIMEOUT)


def test_a_master_crash_breaks_every_link_and_what_it_sent_is_lost() -> None:
    loop, net = _network()
    link = net.connect("agent1")
    assert link is not None
    got: list[str] = []
    link.to_client(lambda: got.append("late"))
    net.master_down()
    loop.run_until(loop.now + 5)
    assert got == []
    assert net.connect("agent1") is None


def test_a_seed_is_one_run() -> None:
    first = run_seed(3)
    again = run_seed(3)
    assert first.steps == again.steps > 100
    assert first.trace == again.trace
    assert first.counts == again.counts
    assert make_scenario(3) == make_scenario(3)
    assert make_scenario(3) != make_scenario(4)


def _outcome(seed: int, violation: Violation | None) -> Outcome:
    return Outcome(seed, violation, actions=0, simulated_seconds=0.0, steps=0)


def test_the_shrinker_finds_the_actions_that_matter() -> None:
    seed = 11
    actions = len(make_scenario(seed).actions)
    assert actions > 10
    culprit = Violation("master-exception", "agent_messages: ValueError: does not hold", 1.0)
    runs: list[frozenset[int]] = []

    def run(seed: int, keep: frozenset[int]) -> Outcome:
        runs.append(keep)
        # Fails only while actions 2 and 7 are both kept; anything else passes, or fails
        # otherwise (which must not count).
        if {2, 7} <= keep:
            return _outcome(seed, culprit)
        if 5 in keep:
            return _outcome(seed, Violation("liveness", "something else", 1.0))
        return _outcome(seed, None)

    found = shrink(seed, culprit, run=run, budget=500)
    assert found is not None
    assert found.keep == {2, 7}
    assert found.outcome.violation == culprit
    assert found.runs == len(runs) < 120


def test_the_shrinker_gives_up_on_a_failure_that_does_not_reproduce() -> None:
    culprit = Violation("agent-invariant", "x", 1.0)
    assert shrink(5, culprit, run=lambda seed, keep: _outcome(seed, None)) is None


def test_a_violation_signature_is_its_kind_and_exception_name() -> None:
    assert signature(Violation("master-exception", "recover: ValueError: no", 0.0)) == (
        "master-exception:ValueError"
    )
    assert signature(Violation("liveness", "3 tasks not seen terminal", 0.0)) == "liveness:"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--seed", "3"], "--seed and --replay go together"),
        (["--seeds", "0"], "--seeds N (N >= 1)"),
        (["--seed", "3", "--replay", "--keep", "1,x"], "--keep: expected comma-separated"),
        (["--seeds", "2", "--jobs", "0"], "--jobs: must be at least 1, got 0"),
        (["--seeds", "2", "--hash-seed", "-1"], "--hash-seed: must be in 0..4294967295"),
    ],
)
def test_bad_arguments_are_refused_by_name(args: list[str], complaint: str) -> None:
    import subprocess
    import sys

    from tests.simulation.helpers import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "bench.simulation", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert complaint in done.stderr
    assert done.stdout == ""


def test_a_replay_prints_the_trace_and_the_command() -> None:
    status, figures, trace = simulate("--seed", "8", "--replay", "--keep", "0,1,2")
    assert status == 0
    assert figures["replay"] == "python -m bench.simulation --seed 8 --replay --keep 0,1,2"
    assert figures["actions"] == 3
    assert "master m1 leads" in trace
    assert "settled" in trace


def test_runs_are_the_same_in_any_process_and_in_parallel() -> None:
    _, alone, _ = simulate("--seeds", "6", "--start", "20", "--shrink-budget", "0")
    _, parallel, _ = simulate(
        "--seeds", "6", "--start", "20", "--jobs", "2", "--shrink-budget", "0"
    )
    for key in ("steps", "simulated_s", "tasks_launched", "updates_seen", "faults"):
        assert alone[key] == parallel[key], key
    assert alone["hash_seed"] == 0


def test_another_hash_seed_is_named_in_the_replay_command() -> None:
    status, figures, _ = simulate("--seed", "4", "--replay", "--keep", "none", "--hash-seed", "7")
    assert status == 0
    assert figures["actions"] == 0
    assert (
        figures["replay"]
        == "python -m bench.simulation --seed 4 --replay --keep none --hash-seed 7"
    )
