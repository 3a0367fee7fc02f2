"""The examples say what went wrong: an unreachable master, a failed task's message, Ctrl-C.

Each runs the real example as a subprocess, the way the README tells a person to.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ["examples.hello_framework", "examples.hello_async"]
LOCAL = [sys.executable, "-m", "emporion", "local", "--isolation", "posix"]


@pytest.fixture
def dead_master() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


def summary_of(stdout: str) -> dict[str, Any]:
    line = next(line for line in stdout.splitlines() if line.startswith("{"))
    found: dict[str, Any] = json.loads(line)
    return found


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_unreachable_master_is_reported(example: str, dead_master: str) -> None:
    env = {**os.environ, "EMPORION_SDK_CONNECT_TIMEOUT_SECONDS": "2"}
    env.pop("EMPORION_MASTER", None)
    result = subprocess.run(
        [sys.executable, "-m", example, "--master", dead_master, "--tasks", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert f"WARNING framework_sdk.aio: cannot reach the master at {dead_master}" in result.stderr
    (error,) = summary_of(result.stdout)["errors"]
    assert error.startswith(f"cannot reach the master at {dead_master}: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("example", EXAMPLES)
def test_master_comes_from_emporion_master(example: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EMPORION_MASTER"}
    result = subprocess.run(
        [sys.executable, "-m", example, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "EMPORION_MASTER": "10.1.2.3:5050"},
        check=False,
    )
    assert result.returncode == 0
    assert "$EMPORION_MASTER: 10.1.2.3:5050" in result.stdout
    missing = subprocess.run(
        [sys.executable, "-m", example],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert missing.returncode == 2
    assert "--master" in missing.stderr


@pytest.mark.parametrize("example", EXAMPLES)
def test_ctrl_c_exits_130_quietly(example: str, dead_master: str) -> None:
    env = {**os.environ, "EMPORION_SDK_CONNECT_TIMEOUT_SECONDS": "inf"}
    child = subprocess.Popen(
        [sys.executable, "-m", example, "--master", dead_master],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stderr is not None
    # Trying to connect (and saying so) is the state a person would press Ctrl-C in.
    for line in child.stderr:
        if "cannot reach the master" in line:
            break
    else:
        pytest.fail("the example ended without saying it cannot reach the master")
    child.send_signal(signal.SIGINT)
    try:
        _, rest = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130
    assert "Traceback" not in rest
    assert "KeyboardInterrupt" not in rest


def test_a_failed_task_shows_its_message(tmp_path: Path) -> None:
    command = "python -m examples.hello_framework --tasks 1 --user no-such-user-emporion"
    result = subprocess.run(
        [*LOCAL, "--work-dir", str(tmp_path), "--run", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed = summary_of(result.stdout)["failed"]
    (text,) = failed.values()
    assert text.startswith("TASK_FAILED (")
    assert "user 'no-such-user-emporion' does not exist" in text


def test_timeout_is_named_in_the_summary(tmp_path: Path) -> None:
    # An agent too small for any task: nothing is ever offered that fits.
    command = "python -m examples.hello_framework --tasks 1 --timeout 2"
    result = subprocess.run(
        [
            *LOCAL,
            "--agent-resources",
            "cpus:0.05;mem:16",
            "--work-dir",
            str(tmp_path),
            "--run",
            command,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    summary = summary_of(result.stdout)
    assert summary["status"] == "DRIVER_ABORTED"
    assert summary["errors"] == ["timed out after 2s (--timeout)"]
