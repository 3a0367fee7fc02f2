"""The launch fork server: its helpers are the agent's children and outlive it; it is restarted
after it dies, also in the middle of a launch; it never outlives its agent.

Each test uses its own :class:`LaunchHelpers` (its own fork server), so killing a server here
leaves the process's shared one alone.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from agent.isolation import (
    Container,
    ContainerState,
    Isolation,
    LaunchError,
    procfs,
    select_isolation,
)
from agent.isolation import launcher as launcher_module
from agent.isolation.isolation import ContainerIsolation
from agent.isolation.launcher import LaunchHelpers
from tests.integration.isolation.conftest import Start, leftover_cgroups, marked_processes
from tests.integration.isolation.support import sandbox_text, wait_exit, wait_for

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[3]

MODES = [
    pytest.param(("auto", None), id="cgroups-namespaces"),
    pytest.param(("auto", False), id="cgroups"),
    pytest.param(("posix", False), id="posix"),
]


@pytest.fixture
def helpers() -> Iterator[LaunchHelpers]:
    own = LaunchHelpers()
    yield own
    own.close()


def _with_helpers(isolation: Isolation, helpers: LaunchHelpers) -> Isolation:
    cast(ContainerIsolation, isolation).helpers = helpers
    return isolation


def _gone(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is None or stat.exited


def _kill_server(helpers: LaunchHelpers) -> int:
    pid = helpers.server_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _gone(pid))  # A zombie until the next launch finds it dead and reaps it.
    return pid


def test_helpers_are_the_agents_children_and_outlive_the_server(
    cgroup_isolation: Isolation, helpers: LaunchHelpers, start: Start
) -> None:
    isolation = _with_helpers(cgroup_isolation, helpers)
    container = start(isolation, "exec sleep 300")
    stat = procfs.read_stat(container.pid)
    assert stat is not None
    assert stat.ppid == os.getpid()  # cloned with CLONE_PARENT
    server = _kill_server(helpers)
    assert server != container.pid
    assert container.poll() is None
    container.signal_all(signal.SIGTERM)
    info = wait_exit(container)
    assert (info.status, info.signal) == (None, signal.SIGTERM)  # our own waitpid's status


def test_a_launch_while_the_server_is_down_restarts_it(
    cgroup_isolation: Isolation, helpers: LaunchHelpers, start: Start
) -> None:
    isolation = _with_helpers(cgroup_isolation, helpers)
    assert wait_exit(start(isolation, "exit 0")).status == 0
    first = _kill_server(helpers)
    container = start(isolation, "echo after the restart")
    assert wait_exit(container).status == 0
    assert sandbox_text(container, "stdout") == "after the restart\n"
    assert helpers.server_pid not in (None, first)


def test_a_server_killed_holding_a_request_is_replaced_and_the_launch_goes_on(
    cgroup_isolation: Isolation,
    helpers: LaunchHelpers,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolation = _with_helpers(cgroup_isolation, helpers)
    assert wait_exit(start(isolation, "exit 0")).status == 0
    server = helpers.server_pid
    assert server is not None
    os.kill(server, signal.SIGSTOP)  # It cannot read the next request...
    sent = threading.Event()
    send = launcher_module._send

    def send_then_tell(*args: object, **kwargs: object) -> None:
        send(*args, **kwargs)  # type: ignore[arg-type]
        sent.set()

    monkeypatch.setattr(launcher_module, "_send", send_then_tell)

    def kill_when_sent() -> None:
        if sent.wait(10):
            os.kill(server, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_sent)
    killer.start()
    try:
        container = start(isolation, "echo launched once")  # ...and dies holding it.
    finally:
        killer.join()
    assert wait_exit(container).status == 0
    assert sandbox_text(container, "stdout") == "launched once\n"
    assert helpers.server_pid not in (None, server)


def test_a_stuck_server_fails_the_launch_and_is_replaced(
    cgroup_isolation: Isolation,
    helpers: LaunchHelpers,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolation = _with_helpers(cgroup_isolation, helpers)
    assert wait_exit(start(isolation, "exit 0")).status == 0
    server = helpers.server_pid
    assert server is not None
    os.kill(server, signal.SIGSTOP)
    monkeypatch.setattr(
        helpers, "start", functools.partial(LaunchHelpers.start, helpers, timeout_s=1)
    )
    with pytest.raises(LaunchError, match="did not start the command within 1 s"):
        start(isolation, "echo never")
    assert _gone(server)  # Killed and reaped: it can never run the stale request.
    monkeypatch.undo()
    container = start(isolation, "echo next")
    assert wait_exit(container).status == 0
    assert sandbox_text(container, "stdout") == "next\n"


def test_find_waits_while_the_intent_is_locked(
    cgroup_isolation: Isolation, helpers: LaunchHelpers, start: Start
) -> None:
    """A restarted agent's ``find`` waits for a launch whose intent is still locked (its
    request in flight, or its helper not yet recorded), then adopts what the helper recorded."""
    isolation = _with_helpers(cgroup_isolation, helpers)
    launched = start(isolation, "exec sleep 300")
    assert launched.run_dir is not None
    run = launched.run_dir
    # As if the agent died before recording the launch, its helper not yet recorded either.
    (run / "state.json").unlink()
    pids = (run / "pids.json").read_text()
    (run / "pids.json").unlink()
    lock = os.open(run / "intent.json", os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    found: list[Container | None] = []
    finder = threading.Thread(target=lambda: found.append(isolation.find(launched.container_id)))
    try:
        finder.start()
        finder.join(0.3)
        assert finder.is_alive()  # Waiting: the launch may still be starting.
        (run / "pids.json").write_text(pids)
    finally:
        os.close(lock)  # What the helper does once it recorded its pids.
        finder.join(10)
    assert len(found) == 1
    container = found[0]
    assert container is not None
    assert (container.pid, container.start_time) == (launched.pid, launched.start_time)
    assert container.poll() is None
    container.signal_all(signal.SIGTERM)
    assert wait_exit(container).signal == signal.SIGTERM
    container.destroy()


def test_the_task_inherits_only_its_stdio(
    cgroup_isolation: Isolation, helpers: LaunchHelpers, start: Start
) -> None:
    isolation = _with_helpers(cgroup_isolation, helpers)
    container = start(isolation, ["/bin/ls", "/proc/self/fd"], namespaces=False)
    assert wait_exit(container).status == 0
    # 0-2, and the directory ls itself opened: no socket, status pipe or lock of the agent.
    assert sandbox_text(container, "stdout").split() == ["0", "1", "2", "3"]


def test_the_spawn_fallback_launches(root_name: str, tmp_path: Path, start: Start) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"cgroups need root; running as euid {os.geteuid()}")
    isolation = select_isolation("auto", root_name, run_dir=tmp_path / "run", fork_server=False)
    container = start(isolation, "echo spawned; exit 4")
    stat = procfs.read_stat(container.pid)
    assert stat is not None
    assert stat.ppid == os.getpid()
    assert wait_exit(container).status == 4
    assert sandbox_text(container, "stdout") == "spawned\n"


AGENT = """
import json, os, signal, sys
from pathlib import Path
from agent.isolation import ContainerLimits, LaunchSpec, select_isolation
args = json.loads(sys.argv[1])
isolation = select_isolation(args["mode"], args["root_name"], run_dir=Path(args["run_dir"]))
states = []
for index, sandbox in enumerate(args["sandboxes"]):
    spec = LaunchSpec(f"c{index}", [args["command"]], args["env"], Path(sandbox),
                      ContainerLimits.from_resources(1, 64), shell=True,
                      namespaces=args["namespaces"])
    states.append(isolation.launch(spec).state().to_json())
print(json.dumps({"states": states, "server": isolation.helpers.server_pid}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("mode", MODES)
def test_containers_outlive_their_agent_and_its_server(
    mode: tuple[str, bool | None],
    root_name: str,
    tmp_path: Path,
    env: dict[str, str],
    leak_check: None,
) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"cgroups need root; running as euid {os.geteuid()}")
    run_dir = tmp_path / "run"
    sandboxes = [tmp_path / f"sandbox{index}" for index in range(2)]
    for sandbox in sandboxes:
        sandbox.mkdir()
    args = {
        "mode": mode[0],
        "namespaces": mode[1],
        "root_name": root_name,
        "run_dir": str(run_dir),
        "command": "trap 'echo got TERM; exit 5' TERM; echo up; while :; do sleep 0.05; done",
        "env": env,
        "sandboxes": [str(sandbox) for sandbox in sandboxes],
    }
    result = subprocess.run(
        [sys.executable, "-c", AGENT, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": env["PATH"]},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    launched = json.loads(result.stdout)
    wait_for(lambda: _gone(launched["server"]))  # It read end-of-file and left.
    restarted = select_isolation(mode[0], root_name, run_dir=run_dir)  # type: ignore[arg-type]
    try:
        for text, sandbox in zip(launched["states"], sandboxes, strict=True):
            container = restarted.recover(ContainerState.from_json(text))
            assert container is not None
            assert container.poll() is None
            stdout = sandbox / "stdout"
            wait_for(lambda: stdout.read_text() == "up\n")  # noqa: B023 (called at once)
            container.signal_all(signal.SIGTERM)
            info = wait_exit(container)
            assert (info.status, info.signal) == (5, None)  # Recorded by its helper.
            assert (sandbox / "stdout").read_text() == "up\ngot TERM\n"
            container.destroy()
    finally:
        restarted.cleanup_orphans(set())
    wait_for(lambda: marked_processes(root_name) == [])
    assert leftover_cgroups(root_name) == []
