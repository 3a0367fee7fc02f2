"""The posix fallback: tasks run in their own session; the report says what is missing."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from agent.isolation import Isolation, LaunchError, procfs, select_isolation
from tests.integration.isolation.conftest import Start, marked_processes
from tests.integration.isolation.support import sandbox_text, wait_exit, wait_for


def test_report_says_what_is_missing(posix_isolation: Isolation) -> None:
    report = posix_isolation.report
    assert posix_isolation.name == "posix"
    assert report.active == ["posix/session", "posix/rlimits"]
    assert {"cgroups/cpu", "cgroups/memory", "cgroups/pids", "namespaces/pid"} <= set(
        report.missing
    )
    assert report.summary().startswith("isolation posix: active posix/session, posix/rlimits;")


def test_runs_a_task_in_its_own_session(posix_isolation: Isolation, start: Start) -> None:
    container = start(posix_isolation, "echo out; echo err >&2; ps -o sid= -p $$; exit 4")
    info = wait_exit(container)
    assert (info.status, info.signal, info.oom_killed) == (4, None, False)
    out = sandbox_text(container, "stdout").split()
    assert out[0] == "out"
    if len(out) > 1:  # ps may be missing on minimal hosts
        assert int(out[1]) == container.pid
    assert sandbox_text(container, "stderr") == "err\n"
    assert container.state().cgroups == ()


def test_stats_and_signals_cover_the_session(
    posix_isolation: Isolation, start: Start, root_name: str
) -> None:
    container = start(posix_isolation, "sleep 30 & exec sleep 30")
    wait_for(lambda: len(marked_processes(root_name)) == 2)
    stats = container.stats()
    assert stats.pids_current == 3  # The two sleeps and the launch helper supervising them.
    assert stats.mem_usage_bytes is not None
    assert stats.mem_limit_bytes is None
    assert stats.oom_kills is None
    container.signal_all(signal.SIGTERM)
    info = wait_exit(container)
    assert info.signal == signal.SIGTERM
    wait_for(lambda: marked_processes(root_name) == [])


def test_destroy_kills_the_session(
    posix_isolation: Isolation, start: Start, root_name: str
) -> None:
    container = start(posix_isolation, "trap '' TERM; sleep 30 & sleep 30 & wait")
    wait_for(lambda: len(marked_processes(root_name)) == 3)
    pids = marked_processes(root_name)
    info = container.terminate(grace_s=0.2)
    assert info is not None
    assert info.signal == signal.SIGKILL
    for pid in pids:
        stat = procfs.read_stat(pid)
        assert stat is None or stat.exited


@pytest.mark.parametrize(
    ("command", "fields", "message"),
    [
        (["no-such-command-emporion"], {}, "command 'no-such-command-emporion' not found"),
        (["true"], {"user": "no-such-user-em"}, "user 'no-such-user-em' does not exist"),
        (["true"], {"namespaces": True}, "PID and mount namespaces were requested"),
    ],
)
def test_launch_failures(
    posix_isolation: Isolation,
    start: Start,
    command: list[str],
    fields: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(LaunchError, match="cannot launch container c0") as raised:
        start(posix_isolation, command, **fields)
    assert message in str(raised.value)


def test_recover_and_orphan_cleanup(
    posix_isolation: Isolation, start: Start, root_name: str, tmp_path: Path
) -> None:
    first = start(posix_isolation, [sys.executable, "-c", "import time; time.sleep(30)"])
    second = start(posix_isolation, ["sleep", "30"])
    restarted = select_isolation("posix", root_name, run_dir=tmp_path / "run")
    recovered = restarted.recover(first.state())
    assert recovered is not None
    assert recovered.poll() is None
    assert restarted.cleanup_orphans({first.container_id}) == [second.container_id]
    assert second.poll() is not None
    recovered.destroy()
    assert first.poll() is not None


def test_sandbox_symlinks_are_not_followed(
    posix_isolation: Isolation, start: Start, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    for name in ("stdout", "stderr"):
        sandbox = tmp_path / "sandboxes" / f"link-{name}"
        sandbox.mkdir(parents=True)
        (sandbox / name).symlink_to(target)
        with pytest.raises(LaunchError, match=f"cannot launch container link-{name}: "):
            start(posix_isolation, ["true"], container_id=f"link-{name}")
    assert target.read_text() == "untouched\n"
