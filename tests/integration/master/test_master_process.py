"""``python -m master`` as a real process: it prints its address, serves, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.master.clients import Event, Scheduler, wait_for

ROOT = Path(__file__).resolve().parents[3]
ADDRESS = re.compile(r"Emporion master (\S+) listening on (\S+)")


def test_python_m_master_serves_and_stops_cleanly(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        EMPORION_HEARTBEAT_INTERVAL="1s",
        EMPORION_LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "master", "--port", "0", "--http-port", "0"),
            *("--work-dir", str(tmp_path)),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = ADDRESS.search(line)
        assert match, f"no address in {line!r}"
        master_id, address = match.groups()

        async def main() -> str:
            scheduler = Scheduler(address)
            try:
                framework_id = await scheduler.subscribe()
                (subscribed,) = scheduler.of(Event.SUBSCRIBED)
                assert subscribed.subscribed.master_info.id == master_id
                assert subscribed.subscribed.heartbeat_interval_seconds == 1.0
                await wait_for(lambda: bool(scheduler.of(Event.HEARTBEAT)), "a heartbeat")
                return framework_id
            finally:
                await scheduler.close()

        framework_id = asyncio.run(main())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
    registry = json.loads((tmp_path / "registry.json").read_text())
    assert framework_id in registry["frameworks"]


def test_bad_flag_exits_2_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "master",
            "--port",
            "0",
            "--http-port",
            "0",
            "--work-dir",
            str(tmp_path),
            "--offer-timeout",
            "forever",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--offer-timeout" in result.stderr
