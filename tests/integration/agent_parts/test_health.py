"""Health probes against real commands and servers, and the HealthChecker driver end to end."""

from __future__ import annotations

import asyncio
import os
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from agent.health import (
    CommandProbe,
    HealthChecker,
    HttpProbe,
    TcpProbe,
    probe_command,
    probe_http,
    probe_tcp,
)
from protos.v1 import mesos_pb2
from tests.integration.agent_parts.servers import LocalServer, send

HC = mesos_pb2.HealthCheck
WAIT_S = 30.0  # an upper bound on waiting for an event, never an assertion on speed


def shell(value: str, **env: str) -> CommandProbe:
    return CommandProbe(shell=True, value=value, arguments=(), environment=tuple(env.items()))


def gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def wait_until_gone(pid: int) -> bool:
    async with asyncio.timeout(WAIT_S):
        while not gone(pid):
            await asyncio.sleep(0.01)
    return True


async def wait_for_file(path: Path) -> str:
    async with asyncio.timeout(WAIT_S):
        while not (path.exists() and path.read_text().strip()):
            await asyncio.sleep(0.01)
    return path.read_text().strip()


def test_command_probe_status_environment_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("")

    async def scenario() -> list[tuple[bool, str]]:
        env = {"PATH": os.environ["PATH"], "FROM_TASK": "task"}
        probes = [
            shell(
                'test "$FROM_TASK" = task && test "$FROM_CHECK" = check && test -f marker',
                FROM_CHECK="check",
            ),
            shell("exit 3"),
            shell("kill -9 $$"),
            CommandProbe(False, "/bin/sh", ("sh", "-c", "exit 0"), ()),
            CommandProbe(False, str(tmp_path / "no-such-program"), (), ()),
        ]
        results = [await probe_command(p, env, tmp_path, 10) for p in probes]
        return [(r.healthy, r.detail) for r in results]

    results = asyncio.run(scenario())
    assert results[0] == (True, "command exited with status 0")
    assert results[1] == (False, "command exited with status 3")
    assert results[2] == (False, "command killed by signal 9")
    assert results[3][0] is True
    assert results[4][0] is False
    assert "cannot run the command" in results[4][1]


def test_command_probe_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, str, int]:
        probe = shell("sleep 60 & echo $! > bg.pid; sleep 60")
        result = await probe_command(probe, dict(os.environ), tmp_path, 0.3)
        background = int((tmp_path / "bg.pid").read_text())
        await wait_until_gone(background)
        return result.healthy, result.detail, background

    healthy, detail, _ = asyncio.run(scenario())
    assert (healthy, detail) == (False, "timed out after 0.3s")


def test_command_probe_leaves_no_background_helpers(tmp_path: Path) -> None:
    async def scenario() -> bool:
        probe = shell("sleep 60 & echo $! > bg.pid; exit 0")
        result = await probe_command(probe, dict(os.environ), tmp_path, 10)
        await wait_until_gone(int((tmp_path / "bg.pid").read_text()))
        return result.healthy

    assert asyncio.run(scenario())


@pytest.fixture
def status_server(http_server: LocalServer) -> tuple[LocalServer, dict[str, int]]:
    """/health answers with ``state["status"]``; /redirect points at /health."""
    state = {"status": 200}

    def health(request: BaseHTTPRequestHandler) -> None:
        send(request, state["status"], b"health")

    http_server.routes["/health"] = health
    http_server.add_status("/redirect", 302, location="/health")
    http_server.add_hang("/hang")
    return http_server, state


def http_probe(port: int, path: str, statuses: frozenset[int] = frozenset()) -> HttpProbe:
    return HttpProbe("http", "127.0.0.1", port, path, statuses)


def test_http_probe_statuses_redirects_and_timeouts(
    status_server: tuple[LocalServer, dict[str, int]], closed_port: int
) -> None:
    server, state = status_server

    async def scenario() -> list[tuple[bool, str]]:
        results = [await probe_http(http_probe(server.port, "/health"), 5)]
        results.append(await probe_http(http_probe(server.port, "/redirect"), 5))
        state["status"] = 503
        results.append(await probe_http(http_probe(server.port, "/health"), 5))
        results.append(await probe_http(http_probe(server.port, "/health", frozenset({503})), 5))
        results.append(await probe_http(http_probe(server.port, "/hang"), 0.2))
        results.append(await probe_http(http_probe(closed_port, "/"), 5))
        return [(r.healthy, r.detail) for r in results]

    results = asyncio.run(scenario())
    url = f"http://127.0.0.1:{server.port}"
    assert results[0] == (True, f"GET {url}/health: HTTP 200")
    assert results[1] == (True, f"GET {url}/redirect: HTTP 200")
    assert results[2] == (False, f"GET {url}/health: HTTP 503")
    assert results[3] == (True, f"GET {url}/health: HTTP 503")
    assert results[4] == (False, "timed out after 0.2s")
    assert results[5][0] is False
    assert "ConnectError" in results[5][1]


def test_tcp_probe(closed_port: int) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        async def scenario() -> tuple[bool, bool]:
            up = await probe_tcp(TcpProbe("127.0.0.1", port), 5)
            down = await probe_tcp(TcpProbe("127.0.0.1", closed_port), 5)
            return up.healthy, down.healthy

        assert asyncio.run(scenario()) == (True, False)


def test_checker_reports_changes_and_kills_after_consecutive_failures(
    status_server: tuple[LocalServer, dict[str, int]], tmp_path: Path
) -> None:
    server, state = status_server
    check = HC(
        type=HC.HTTP,
        http=HC.HTTPCheckInfo(port=server.port, path="/health"),
        delay_seconds=0,
        interval_seconds=0.01,
        timeout_seconds=5,
        grace_period_seconds=0,
        consecutive_failures=3,
    )
    changes: list[bool] = []
    kills: list[str] = []

    def on_change(healthy: bool) -> None:
        changes.append(healthy)
        if healthy:
            state["status"] = 500  # the task breaks right after its first healthy report

    async def scenario() -> None:
        checker = HealthChecker(check, {}, tmp_path, on_change, kills.append)
        checker.start()
        async with asyncio.timeout(WAIT_S):
            await checker.wait()
        assert not checker.running
        assert checker.policy is not None
        checker.policy.validate()
        await checker.stop()

    asyncio.run(scenario())
    assert changes == [True, False]
    assert len(kills) == 1
    assert kills[0].startswith("health check failed 3 consecutive times; last: GET ")
    assert server.hits["/health"] == 4


def test_checker_ignores_grace_failures_and_survives_callback_errors(tmp_path: Path) -> None:
    check = HC(
        type=HC.COMMAND,
        command=mesos_pb2.CommandInfo(value="test -f ready"),
        delay_seconds=0,
        interval_seconds=0.01,
        grace_period_seconds=WAIT_S,
        consecutive_failures=1,
    )
    changes: list[bool] = []

    def on_change(healthy: bool) -> None:
        changes.append(healthy)
        raise RuntimeError("a broken callback must not stop the checker")

    async def scenario() -> None:
        checker = HealthChecker(check, dict(os.environ), tmp_path, on_change, lambda _: None)
        checker.start()
        async with asyncio.timeout(WAIT_S):
            while len(checker.decisions) < 3:
                await asyncio.sleep(0.01)
            assert all(d.ignored for d in checker.decisions)
            (tmp_path / "ready").write_text("")
            while not changes:
                await asyncio.sleep(0.01)
            count = len(checker.decisions)
            while len(checker.decisions) < count + 2:
                await asyncio.sleep(0.01)
        assert checker.running
        await checker.stop()
        assert not checker.running

    asyncio.run(scenario())
    assert changes == [True]


def test_stop_kills_a_probe_in_progress(tmp_path: Path) -> None:
    check = HC(
        type=HC.COMMAND,
        command=mesos_pb2.CommandInfo(value="echo $$ > probe.pid; exec sleep 60"),
        delay_seconds=0,
        timeout_seconds=0,  # no timeout: only stop() ends it
    )

    async def scenario() -> None:
        checker = HealthChecker(check, dict(os.environ), tmp_path, lambda _: None, lambda _: None)
        checker.start()
        pid = int(await wait_for_file(tmp_path / "probe.pid"))
        await checker.stop()
        await wait_until_gone(pid)
        with pytest.raises(RuntimeError, match="already started"):
            checker.start()

    asyncio.run(scenario())


def test_invalid_checks_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"health_check\.http must be set"):
        HealthChecker(HC(type=HC.HTTP), {}, tmp_path, lambda _: None, lambda _: None)
