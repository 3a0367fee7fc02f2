"""``pip install .`` without extras gives a working ``emporion``.

The wheel is built from this checkout, installed into a fresh virtualenv with no index, and its
``emporion`` runs ``--help`` and a whole local cluster from a directory outside the checkout.
The fresh virtualenv sees only the runtime dependencies' closure (``[project.dependencies]`` and
what they require, without extras), linked from this virtualenv's site-packages: a module only
a dev extra brings (as ``httpx`` once was) is missing there, as on a user's machine.

An agent leaves nothing under ``/run`` either: its run directory goes with its last container.
No index is used (the build backend, hatchling, is in the dev extra); it takes about 15 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from agent.isolation.selection import default_run_dir
from agent.runtime.main import isolation_root_name

ROOT = Path(__file__).resolve().parents[3]


def runtime_closure() -> list[metadata.Distribution]:
    """The installed distributions ``pip install .`` (no extras) needs, dependencies included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(spec) for spec in project["dependencies"]]
    seen: dict[str, metadata.Distribution] = {}
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        dist = metadata.distribution(requirement.name)
        seen[name] = dist
        pending.extend(Requirement(spec) for spec in dist.requires or [])
    return list(seen.values())


def link_site_packages(dists: list[metadata.Distribution], into: Path) -> None:
    """Symlink each distribution's top-level entries (modules, dist-info) into ``into``."""
    site = Path(sysconfig.get_paths()["purelib"])
    into.mkdir()
    for dist in dists:
        for file in dist.files or []:
            top = file.parts[0]
            if top in {"..", "__pycache__"}:
                continue  # Scripts and the like, outside site-packages.
            source, target = site / top, into / top
            if source.exists() and not target.exists():
                target.symlink_to(source)


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_wheel_installs_and_runs_a_local_cluster(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-w", wheels, ROOT, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("emporion-*.whl")
    deps = tmp_path / "deps"
    link_site_packages(runtime_closure(), deps)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    fresh_python = venv / "bin" / "python"
    fresh_site = Path(
        run(fresh_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            cwd=tmp_path).stdout.strip()
    )  # fmt: skip
    (fresh_site / "runtime-deps.pth").write_text(f"{deps}\n")
    run(
        sys.executable, "-m", "pip", "--python", fresh_python, "install", "--no-index",
        "--find-links", wheels, wheel, cwd=tmp_path,
    )  # fmt: skip
    emporion = venv / "bin" / "emporion"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "EMPORION_MASTER"}
    }
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # It runs from the installed package, not from this checkout.
    where = run(
        fresh_python, "-c", "import emporion; print(emporion.__file__)", cwd=outside, env=env
    )
    assert where.stdout.startswith(str(fresh_site))
    # Dev tools are not there: the install really is without extras.
    missing = subprocess.run(
        [fresh_python, "-c", "import pytest"],
        cwd=outside,
        env=env,
        capture_output=True,
        check=False,
    )
    assert missing.returncode != 0
    helped = run(emporion, "--help", cwd=outside, env=env)
    assert "local" in helped.stdout
    work = tmp_path / "cluster"
    (outside / "one_task.py").write_text(ONE_TASK)
    ran = run(
        emporion, "local", "--agents", "1", "--work-dir", work, "--run", "python one_task.py",
        cwd=outside, env=env, timeout=180,
    )  # fmt: skip
    assert "TASK_FINISHED" in ran.stdout
    assert "web UI and HTTP API at http://" in ran.stdout
    # The agent's run directory (/run/emporion-<hash> as root) went with its last container.
    run_dir = default_run_dir(isolation_root_name((work / "agent-0").resolve()))
    assert (work / "agent-0").is_dir()
    assert not run_dir.exists(), f"the agent left {run_dir} behind"


ONE_TASK = """
import os, sys
from framework_sdk import Scheduler, SchedulerDriver, messages
from protos.resources import Resources

NEED = Resources.parse("cpus:0.1;mem:32")

class One(Scheduler):
    launched = False
    def resourceOffers(self, driver, offers):
        for offer in offers:
            if not self.launched and messages.offer_resources(offer).contains(NEED):
                task = messages.task_info("one", offer, NEED, command="true")
                driver.launchTasks([offer.id], [task])
                self.launched = True
            else:
                driver.declineOffer(offer.id)
    def statusUpdate(self, driver, status):
        if messages.is_terminal(status.state):
            print(messages.state_name(status.state), status.message)
            driver.stop()

driver = SchedulerDriver(One(), messages.framework_info("one"), os.environ["EMPORION_MASTER"])
driver.run()
"""
