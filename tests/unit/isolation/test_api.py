"""The public surface of agent.isolation and the rules its modules keep."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import agent.isolation
from agent.isolation import init
from agent.isolation.helper import supervise
from agent.isolation.launcher import helper_argv

PACKAGE = Path(agent.isolation.__file__).parent
FORBIDDEN = {"grpc", "asyncio", "kazoo", "fastapi", "uvicorn", "starlette"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_exports() -> None:
    assert sorted(agent.isolation.__all__) == [
        "Container",
        "ContainerLimits",
        "ContainerState",
        "ContainerStats",
        "ExitInfo",
        "Isolation",
        "IsolationError",
        "IsolationReport",
        "IsolationUnavailableError",
        "LaunchError",
        "LaunchSpec",
        "select_isolation",
        "validate_container_id",
    ]
    for name in agent.isolation.__all__:
        assert getattr(agent.isolation, name) is not None


def test_no_io_framework_imports() -> None:
    for path in PACKAGE.glob("*.py"):
        roots = {name.split(".")[0] for name in imported_modules(path)}
        assert not roots & FORBIDDEN, path.name


def test_launch_helper_uses_only_the_standard_library() -> None:
    # It runs by path under `python -I -S` (no site-packages) and imports agent.isolation,
    # whose modules may import only the standard library and each other.
    for path in [*PACKAGE.glob("*.py"), *PACKAGE.glob("helper/*.py")]:
        names = imported_modules(path) - {"__future__"}
        outside = {name for name in names if name.split(".")[0] not in sys.stdlib_module_names}
        assert all(name.startswith("agent.isolation") for name in outside), (path, outside)


def test_the_helper_imports_nothing_of_the_agents_side() -> None:
    # init.py loads agent.isolation.helper without agent/isolation/__init__.py, so that the
    # fork server (copied into every clone) holds none of the agent-side modules.
    for path in [PACKAGE / "init.py", *PACKAGE.glob("helper/*.py")]:
        names = imported_modules(path) - {"__future__"}
        outside = {name for name in names if name.split(".")[0] not in sys.stdlib_module_names}
        assert all(name.startswith("agent.isolation.helper") for name in outside), (path, outside)


def test_launch_helper_starts_in_isolated_mode() -> None:
    result = subprocess.run(
        [*helper_argv("--no-such-flag")], capture_output=True, text=True, env={}, check=False
    )
    assert (result.returncode, result.stderr.strip()) == (2, init.USAGE)


def test_wait_status_descriptions() -> None:
    exited = os.waitstatus_to_exitcode  # keep the pairing with the kernel's encoding explicit
    assert exited(3 << 8) == 3
    assert supervise.describe_wait_status(3 << 8) == "exit 3"
    assert supervise.describe_wait_status(signal.SIGKILL) == "signal 9"
    assert supervise.exit_code_for("exit 3") == 3
    assert supervise.exit_code_for("signal 15") == 128 + 15


def test_helper_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Checked before the helper closes inherited fds, so this is safe in-process.
    assert init.main(["--status-fd"]) == 2
    assert init.main(["--fork-server", "extra"]) == 2
    assert "usage: init.py" in capsys.readouterr().err
