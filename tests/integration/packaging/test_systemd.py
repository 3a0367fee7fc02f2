"""The systemd units and environment files in packaging/systemd are valid as shipped.

``systemd-analyze verify`` checks the units (with ``ExecStart`` pointed at this virtualenv's
``emporion``, since ``/opt/emporion`` is where docs/deploy.md installs it, not where the tests
run); any warning fails the test, as an unknown key is only a warning to systemd. The example
environment files must give a master and an agent configuration their commands accept.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ZkMaster
from agent.config import config_from_args as agent_config
from master.config import config_from_args as master_config

ROOT = Path(__file__).resolve().parents[3]
UNITS = ROOT / "packaging" / "systemd"
INSTALLED = "/opt/emporion/bin/emporion"


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd reads them here (no quoting is used in ours)."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {raw!r}"
        assert re.fullmatch(r"EMPORION_[A-Z_]+", key), f"{path.name}: {raw!r}"
        assert not value.startswith(("'", '"')), f"{path.name}: {raw!r} needs no quotes"
        values[key] = value
    return values


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_verify_without_warnings(tmp_path: Path) -> None:
    emporion = Path(sys.executable).parent / "emporion"
    assert emporion.is_file()
    units = []
    for unit in sorted(UNITS.glob("*.service")):
        text = unit.read_text()
        assert f"ExecStart={INSTALLED} " in text
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED, str(emporion)))
        units.append(str(copy))
    assert [Path(u).name for u in units] == ["emporion-agent.service", "emporion-master.service"]
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_the_agent_unit_keeps_tasks_across_a_restart() -> None:
    text = (UNITS / "emporion-agent.service").read_text()
    # systemd must signal only the agent: its tasks stay to be recovered from the checkpoint.
    assert "\nKillMode=process\n" in text
    assert "\nKillSignal=SIGTERM\n" in text
    assert "\nEnvironment=EMPORION_WORK_DIR=/var/lib/emporion/agent\n" in text
    assert "\nStateDirectory=emporion/agent\n" in text


def test_the_example_environment_files_are_accepted() -> None:
    master_env = environment_file(UNITS / "master.env")
    master = master_config([], {**master_env, "EMPORION_WORK_DIR": "/var/lib/emporion/master"})
    assert master.zk is not None
    assert master.registry == "zookeeper"
    assert master.host == "0.0.0.0"
    assert master.http_port == 8080
    agent_env = environment_file(UNITS / "agent.env")
    agent = agent_config([], {**agent_env, "EMPORION_WORK_DIR": "/var/lib/emporion/agent"})
    assert isinstance(agent.master, ZkMaster)
    # Agents follow the masters' election: the same ensemble and path.
    assert str(agent.master.url) == master_env["EMPORION_ZK"]
    assert agent.recover == "reconnect"
