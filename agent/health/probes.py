"""The three probes, run once each: a command, an HTTP GET, a TCP connect.

Every probe returns a :class:`ProbeResult` and never raises for a failing task: errors,
refusals and timeouts are unhealthy results with a detail. A command probe runs in its own
session; its whole process group is killed when it times out, when it is cancelled, and after it
exits (so helpers it left in the background do not outlive it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import httpx

from agent.health.policy import ProbeResult
from agent.health.spec import CommandProbe, HttpProbe, Probe, TcpProbe


def _timed_out(timeout: float | None) -> ProbeResult:
    return ProbeResult(False, f"timed out after {timeout}s")


def _kill_group(pgid: int) -> None:
    # The group outlives its leader while members remain, so its id cannot be reused by then.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def probe_command(
    probe: CommandProbe, env: Mapping[str, str], cwd: Path, timeout: float | None
) -> ProbeResult:
    """Run the command; exit status 0 is healthy."""
    environment = {**env, **dict(probe.environment)}
    argv = probe.argv
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            executable=argv[0] if probe.shell else probe.value,
            env=environment,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as error:
        return ProbeResult(False, f"cannot run the command: {error}")
    try:
        async with asyncio.timeout(timeout):
            status = await process.wait()
    except TimeoutError:
        return _timed_out(timeout)
    finally:
        _kill_group(process.pid)
        if process.returncode is None:
            await process.wait()
    if status == 0:
        return ProbeResult(True, "command exited with status 0")
    if status < 0:
        return ProbeResult(False, f"command killed by signal {-status}")
    return ProbeResult(False, f"command exited with status {status}")


async def probe_http(probe: HttpProbe, timeout: float | None) -> ProbeResult:
    """GET the URL, following redirects; the final status decides."""
    try:
        async with (
            asyncio.timeout(timeout),
            # No proxies for a loopback probe; tasks serve HTTPS with certificates of their own.
            httpx.AsyncClient(
                trust_env=False, verify=False, follow_redirects=True, timeout=None
            ) as client,
        ):
            response = await client.get(probe.url)
    except TimeoutError:
        return _timed_out(timeout)
    except httpx.HTTPError as error:
        return ProbeResult(False, f"GET {probe.url}: {type(error).__name__}: {error}")
    status = response.status_code
    return ProbeResult(probe.is_healthy(status), f"GET {probe.url}: HTTP {status}")


async def probe_tcp(probe: TcpProbe, timeout: float | None) -> ProbeResult:
    """Open a TCP connection and close it at once."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(probe.host, probe.port)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    except TimeoutError:
        return _timed_out(timeout)
    except OSError as error:
        return ProbeResult(False, f"connect to {probe.host}:{probe.port}: {error}")
    return ProbeResult(True, f"connected to {probe.host}:{probe.port}")


async def run_probe(
    probe: Probe, env: Mapping[str, str], cwd: Path, timeout: float | None
) -> ProbeResult:
    """Run any probe once with ``timeout`` (None: no timeout)."""
    if isinstance(probe, CommandProbe):
        return await probe_command(probe, env, cwd, timeout)
    if isinstance(probe, HttpProbe):
        return await probe_http(probe, timeout)
    return await probe_tcp(probe, timeout)
