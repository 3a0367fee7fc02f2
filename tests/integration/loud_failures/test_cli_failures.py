"""What a person gets wrong on the command line is one line naming it, exit status 2.

Each case runs the real ``emporion`` (or ``python -m master`` / ``agent``) as a subprocess: a
busy port names its address, bad flags name the flag, help texts are plain and say which flags
are required, and a resource name one edit away from a known one is pointed out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def emporion(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emporion", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *, prefix: str) -> str:
    """The error line, after checking the exit status is 2 and nothing looks like a traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "sys.excepthook" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on (all addresses), for as long as the test runs."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_master_grpc_port_in_use(busy_port: int) -> None:
    result = emporion(
        "master", "--port", str(busy_port), "--http-port", "off", "--registry", "memory"
    )
    line = one_line_error(result, prefix="emporion master:")
    assert f"127.0.0.1:{busy_port}" in line
    assert "--port" in line
    assert "in use" in line
    # gRPC's own multi-line complaint is not printed: the port is checked first.
    assert "add_port" not in result.stderr


def test_master_http_port_in_use(busy_port: int) -> None:
    result = emporion(
        "master", "--port", "0", "--http-port", str(busy_port), "--registry", "memory"
    )
    line = one_line_error(result, prefix="emporion master:")
    assert f"127.0.0.1:{busy_port}" in line


def test_agent_http_port_in_use(busy_port: int, tmp_path: Path) -> None:
    result = emporion(
        "agent", "--master", "127.0.0.1:1", "--work-dir", str(tmp_path), "--isolation", "posix",
        "--ip", "127.0.0.1", "--port", str(busy_port),
    )  # fmt: skip
    line = one_line_error(result, prefix="emporion agent:")
    assert f"127.0.0.1:{busy_port}" in line
    assert "(--port)" in line
    assert "Error in" not in result.stderr


def test_local_with_its_master_port_in_use(busy_port: int) -> None:
    result = emporion("local", "--isolation", "posix", "--port", str(busy_port))
    line = one_line_error(result, prefix="emporion local:")
    assert line.startswith("emporion local: master could not start: emporion master: cannot")
    assert f"127.0.0.1:{busy_port} (--port)" in line


def test_agent_executor_port_in_use(busy_port: int, tmp_path: Path) -> None:
    result = emporion(
        "agent", "--master", "127.0.0.1:1", "--work-dir", str(tmp_path), "--isolation", "posix",
        "--port", "0", "--executor-port", str(busy_port),
    )  # fmt: skip
    line = one_line_error(result, prefix="emporion agent:")
    assert f"127.0.0.1:{busy_port} (--executor-port)" in line
    assert "add_port" not in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("agent", "--work-dir", "/tmp/x"), "--master is required"),
        (("agent", "--master", "nowhere", "--work-dir", "/tmp/x"), "--master"),
        (("agent", "--master", "h:1", "--work-dir", "/tmp/x", "--port", "http"), "--port"),
        (("agent", "--master", "h:1", "--work-dir", "/tmp/x", "--resources", "cpus:x"), "cpus"),
        (("master", "--port", "many"), "--port"),
        (("master",), "--work-dir is required (or EMPORION_WORK_DIR)"),
        (("master", "--offer-timeout", "soon"), "--offer-timeout"),
        (("local", "--agents", "0"), "--agents must be at least 1, not 0"),
        (("local", "--agents", "-2"), "--agents must be at least 1"),
        (("local", "--port", "70000"), "port must be within 0-65535"),
        (("local", "--agent-resources", "cpus:;mem:1"), "--agent-resources"),
        (("local", "--run", "echo 'unbalanced"), "No closing quotation"),
        (("local", "--run", " "), "--run needs a command"),
        (("resources", "cpus:4;mem"), "mem"),
    ],
)
def test_bad_flags_are_one_line_naming_them(args: tuple[str, ...], named: str) -> None:
    result = emporion(*args)
    line = one_line_error(result, prefix=f"emporion {args[0]}:")
    assert named in line


def test_agent_help_shows_required_flags_as_required() -> None:
    result = emporion("agent", "--help")
    assert result.returncode == 0
    usage = result.stdout.splitlines()[0]
    assert usage.startswith("usage: emporion agent --master HOST:PORT --work-dir DIR")
    assert "[--master" not in result.stdout
    assert "required (each may instead be given as its EMPORION_* variable):" in result.stdout


def test_local_help_is_plain_text() -> None:
    result = emporion("local", "--help")
    assert result.returncode == 0
    assert "``" not in result.stdout
    assert ":class:" not in result.stdout
    assert "--run CMD" in result.stdout


def test_resources_typo_warns_once_and_still_parses() -> None:
    result = emporion("resources", "cpu:4;mem:64")
    assert result.returncode == 0
    assert result.stdout.strip() == "cpu:4;mem:64"
    warnings = [line for line in result.stderr.splitlines() if "did you mean cpus?" in line]
    assert len(warnings) == 1
    quiet = emporion("resources", "licenses:3;cpus:1")
    assert quiet.returncode == 0
    assert quiet.stderr == ""


def test_agent_warns_about_a_resource_typo(busy_port: int, tmp_path: Path) -> None:
    # The busy port ends the agent right after it has read its flags and logged its warnings.
    result = emporion(
        "agent", "--master", "127.0.0.1:1", "--work-dir", str(tmp_path), "--isolation", "posix",
        "--ip", "127.0.0.1", "--port", str(busy_port), "--resources", "cpu:2;mem:64",
    )  # fmt: skip
    assert result.returncode == 2
    warnings = [line for line in result.stderr.splitlines() if "did you mean cpus?" in line]
    assert len(warnings) == 1, result.stderr
    assert "WARNING" in warnings[0]


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="runs the command as nobody (setpriv), which needs root",
)
@pytest.mark.parametrize(
    ("command", "named"),
    [
        (
            ("agent", "--master", "127.0.0.1:1", "--port", "0"),
            "--work-dir {dir}/agent: cannot create it: Permission denied",
        ),
        (("master", "--port", "0", "--http-port", "off"), "{dir}/master"),
    ],
)
def test_a_work_dir_it_may_not_write_is_one_line(
    command: tuple[str, ...], named: str, tmp_path: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    work_dir = private / command[0]
    result = subprocess.run(
        [*AS_NOBODY, sys.executable, "-m", "emporion", *command, "--work-dir", str(work_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = one_line_error(result, prefix=f"emporion {command[0]}:")
    assert named.format(dir=private) in line
    assert "Permission denied" in line
