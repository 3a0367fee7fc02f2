"""``emporion local``: a real master and agents as processes, an example run to completion."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emporion.local_cluster import ClusterError, LocalCluster, split_host_resources
from protos.resources import Resources

ROOT = Path(__file__).resolve().parents[2]


def emporion(*args: str) -> list[str]:
    return [sys.executable, "-m", "emporion", *args]


def test_local_runs_the_example_to_completion(tmp_path: Path) -> None:
    example = f"{sys.executable} -m examples.hello_framework --master {{master}} --tasks 6"
    result = subprocess.run(
        emporion("local", "--agents", "2", "--work-dir", str(tmp_path), "--run", example),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert summary["finished"] == 6
    assert summary["errors"] == []
    assert "Emporion local cluster stopped." in result.stdout
    # Both agents and the master kept their state where we asked.
    assert {p.name for p in tmp_path.iterdir()} >= {"master", "agent-0", "agent-1", "logs"}


def test_ctrl_c_stops_everything_and_removes_the_temporary_dir() -> None:
    child = subprocess.Popen(
        emporion("local", "--agents", "1", "--isolation", "posix"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    banner = next(line for line in lines if line.startswith("Emporion local cluster"))
    found = re.search(r"work dir (\S+)", banner)
    assert found is not None
    work_dir = Path(found.group(1))
    assert work_dir.is_dir()
    ui = re.search(r"web UI and HTTP API at (http://\S+/)\)", banner)
    assert ui is not None, banner
    page = httpx.get(ui.group(1), follow_redirects=True, timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 0
    child.stdout.close()
    assert not work_dir.exists()
    survivors = subprocess.run(
        ["pgrep", "-f", f"--work-dir {work_dir}"], capture_output=True, text=True, check=False
    )
    assert survivors.stdout == ""


def test_local_with_agent_gateways_runs_tasks_through_them(tmp_path: Path) -> None:
    run = "emporion run --master {master} -- echo through-the-gateways"
    result = subprocess.run(
        emporion(
            "local", "--isolation", "posix", "--agent-gateways", "2",
            "--work-dir", str(tmp_path), "--run", f"{sys.executable} -m {run}",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "agents: through the master's gateways at 127.0.0.1:" in result.stdout
    assert "through-the-gateways" in result.stdout
    refused = subprocess.run(
        emporion("local", "--agent-gateways", "65", "--work-dir", str(tmp_path / "refused")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "emporion local: master could not start: python -m master: --agent-gateways: must be"
        " between 0 and 64, got 65"
    ), refused.stderr


def test_run_exit_status_is_the_commands(tmp_path: Path) -> None:
    result = subprocess.run(
        emporion("local", "--isolation", "posix", "--work-dir", str(tmp_path), "--run", "false"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1


def test_a_failed_run_keeps_the_temporary_work_dir_and_says_where() -> None:
    code = "import google.protobuf, os, sys; print(sys.executable, os.environ['EMPORION_MASTER'])"
    script = f"python -c {shlex.quote(code)}; exit 3"
    result = subprocess.run(
        emporion("local", "--isolation", "posix", "--run", f"sh -c {shlex.quote(script)}"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        # No virtualenv on PATH: a bare `python` in --run must still be this one.
        env={**os.environ, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 3, result.stdout + result.stderr
    banner = result.stdout.splitlines()
    master = re.search(r"master at (\S+)", banner[0])
    assert master is not None
    assert f"{sys.executable} {master.group(1)}" in result.stdout
    assert re.search(r"  logs: \S+/logs ", result.stdout)
    kept = re.search(
        r"the command exited with status 3; the cluster's work dir is kept: (\S+)", result.stderr
    )
    assert kept is not None, result.stderr
    work_dir = Path(kept.group(1))
    try:
        assert (work_dir / "logs" / "master.log").is_file()
        assert (work_dir / "logs" / "agent-0.log").is_file()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def test_a_successful_run_removes_the_temporary_work_dir() -> None:
    result = subprocess.run(
        emporion("local", "--isolation", "posix", "--run", "true"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"work dir (\S+)", result.stdout)
    assert found is not None
    assert not Path(found.group(1)).exists()
    assert "kept" not in result.stderr


def test_bad_arguments_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="agents must be >= 0"):
        LocalCluster(agents=-1)
    with pytest.raises(ValueError, match="isolation must be"):
        LocalCluster(isolation="docker")
    result = subprocess.run(
        emporion("local", "--port", "70000"), capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "port must be within 0-65535" in result.stderr


def test_a_master_that_cannot_start_is_reported(tmp_path: Path) -> None:
    cluster = LocalCluster(agents=0, work_dir=tmp_path, master_flags=("--offer-timeout", "bogus"))
    with pytest.raises(ClusterError, match="master exited with status 2"):
        cluster.start(timeout=30)
    assert cluster.master_address is None


def test_host_split_gives_each_agent_its_own_ports() -> None:
    shares = [Resources.parse(split_host_resources(3, i)) for i in range(3)]
    ports = [set(range(r.ranges("ports")[0][0], r.ranges("ports")[0][1] + 1)) for r in shares]
    assert not ports[0] & ports[1]
    assert not ports[1] & ports[2]
    assert all(r.get("cpus") > 0 and r.get("mem") >= 64 for r in shares)
    with pytest.raises(ValueError, match="out of range"):
        split_host_resources(2, 2)
    assert os.cpu_count()


def test_ctrl_c_during_run_ends_the_command_and_the_cluster_quietly() -> None:
    # A framework that waits for offers that never fit; Ctrl-C reaches the whole process
    # group, as a terminal sends it.
    command = "python -m examples.hello_framework --tasks 1"
    child = subprocess.Popen(
        emporion(
            "local",
            "--isolation",
            "posix",
            "--agent-resources",
            "cpus:0.05;mem:16",
            "--run",
            command,
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    banner = child.stdout.readline()
    found = re.search(r"work dir (\S+)", banner)
    assert found is not None, banner
    # Wait until the framework has registered: the master then lists it.
    http = re.search(r"web UI and HTTP API at (http://\S+/)\)", banner)
    assert http is not None
    for _ in range(600):
        frameworks = httpx.get(http.group(1) + "master/frameworks", timeout=10).json()
        if frameworks["frameworks"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the framework never registered")
    os.killpg(child.pid, signal.SIGINT)
    try:
        stdout, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    assert "Emporion local cluster stopped." in stdout
    assert not Path(found.group(1)).exists()
