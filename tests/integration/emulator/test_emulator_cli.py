"""The emulator's command line against a fake master, and its sans-I/O core's import rule."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emporion.testing.emulator_cli import parse_args
from tests.integration.emulator.fake_gateway import eventually, running_gateway
from tests.unit.test_architecture import IO_MODULES, transitive_imports

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "module", ["emporion.testing.emulated_agent", "emporion.testing.emulator_config"]
)
def test_emulator_core_imports_no_io_framework(module: str) -> None:
    bad = sorted(n for n in transitive_imports(module) if n.split(".")[0] in IO_MODULES)
    assert bad == [], f"{module} reaches I/O modules: {bad}"


def test_importing_the_package_loads_no_grpc_or_kazoo() -> None:
    code = (
        "import sys, emporion.testing\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'kazoo')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_cli_takes_a_zk_url_and_its_timings() -> None:
    config, _ = parse_args(
        [
            "--master",
            "zk://127.0.0.1:2181/emporion",
            "--zk-session-timeout",
            "2secs",
            "--reregister-spread",
            "100ms",
            "--agents",
            "5",
        ]
    )
    assert (config.masters, config.zk_url) == ((), "zk://127.0.0.1:2181/emporion")
    assert (config.zk_session_timeout, config.reregister_spread, config.agents) == (2.0, 0.1, 5)


def test_cli_takes_a_start_time_and_a_register_timeout() -> None:
    args = ["--master", "127.0.0.1:5050", "--start-at", "1700000000.5"]
    config, _ = parse_args([*args, "--register-timeout", "5mins"])
    assert (config.start_at, config.register_timeout) == (1700000000.5, 300.0)
    assert parse_args(["--master", "127.0.0.1:5050"])[0].start_at is None
    with pytest.raises(SystemExit):
        parse_args([*args, "--register-timeout", "soon"])


def test_cli_registers_agents_and_prints_counters_on_sigterm() -> None:
    async def main() -> None:
        async with running_gateway() as gateway:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "emporion.testing.agent_emulator",
                "--master",
                gateway.address,
                "--agents",
                "3",
                "--mode",
                "run",
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert process.stdout is not None
                line = await asyncio.wait_for(process.stdout.readline(), 60)
                assert line.decode().startswith("registered 3 agents")
                assert len(gateway.sessions) == 3
                process.send_signal(signal.SIGTERM)
                out, err = await asyncio.wait_for(process.communicate(), 60)
                assert process.returncode == 0, err.decode()
                counters = json.loads(out.decode().splitlines()[-1])
                assert counters["registrations"] == 3
                await eventually(lambda: all(s.ended for s in gateway.sessions))
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    asyncio.run(main())


def test_cli_rejects_a_bad_flag_naming_it() -> None:
    async def main() -> tuple[int | None, bytes]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "emporion.testing.agent_emulator",
            "--master",
            "127.0.0.1:1",
            "--resources",
            "cpus:x",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        return process.returncode, err

    code, err = asyncio.run(main())
    assert code == 2
    assert b"'resources'" in err
