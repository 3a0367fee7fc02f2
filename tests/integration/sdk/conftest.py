"""Fixtures for framework_sdk against the real master: the master as a subprocess, emulated agents.

:class:`MasterProcess` runs ``python -m master --port P --work-dir D`` and reads the address it
prints; it can be killed, paused and restarted on the same port and work dir.
:class:`EmulatorThread` runs the agent emulator (``emporion.testing.AgentEmulator``) on its own
asyncio loop in a thread, so threaded drivers and subprocess frameworks can use its agents.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

from emporion.testing import AgentEmulator

ROOT = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 60.0
_ADDRESS = re.compile(r"listening on (\d+\.\d+\.\d+\.\d+):(\d+)")

needs_master = pytest.mark.skipif(
    not (ROOT / "master" / "__main__.py").exists(), reason="the master has no entry point yet"
)


class MasterProcess:
    """A ``python -m master`` subprocess on 127.0.0.1 (port 0 the first time)."""

    def __init__(self, work_dir: Path, extra_args: Sequence[str] = ()) -> None:
        self.work_dir = work_dir
        self.extra_args = list(extra_args)
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self._starts = 0

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"`` of the running master."""
        assert self.port, "master not started"
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start (or restart on the same port and work dir); the address once it listens."""
        assert self.process is None, "already running"
        self._starts += 1
        log_path = self.work_dir / f"master-{self._starts}.log"
        self._log = log_path.open("wb")
        args = [sys.executable, "-m", "master", "--port", str(self.port), "--http-port", "0"]
        args += ["--work-dir", str(self.work_dir), "--log-level", "WARNING", *self.extra_args]
        process = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self.process = process
        assert process.stdout is not None
        for line in process.stdout:
            match = _ADDRESS.search(line)
            if match:
                self.port = int(match.group(2))
                break
        else:
            process.wait(10)
            self.process = None
            raise RuntimeError(f"the master exited ({process.returncode}): {log_path.read_text()}")
        # Keep reading its output so that a chatty master never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
        return self.address

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        """Stop it (SIGINT: orderly; SIGKILL: a crash) and wait until it is gone."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # In case a test left it paused.
            process.send_signal(sig)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """SIGSTOP: the master stays connected but says nothing (no heartbeats)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def _drain(stream: IO[str]) -> None:
    with stream:
        for _ in stream:
            pass


class EmulatorThread:
    """An AgentEmulator on its own asyncio loop in a thread; ``with`` registers the agents."""

    def __init__(self, address: str, agents: int = 2, mode: str = "finish") -> None:
        self._address, self._agents, self._mode = address, agents, mode
        self._ready: Future[AgentEmulator] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="agent-emulator", daemon=True)

    def _make(self) -> AgentEmulator:
        return AgentEmulator(
            self._address,
            agents=self._agents,
            resources="cpus:2;mem:1024;disk:1000;ports:[31000-31009]",
            mode=self._mode,
            backoff_min=0.05,
            backoff_max=0.5,
            tick_interval=0.05,
            register_timeout=WAIT_SECONDS,
        )

    def _main(self) -> None:
        async def serve() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                async with self._make() as emulator:
                    self._ready.set_result(emulator)
                    await self._stop.wait()
                    emulator.validate()
            except BaseException as error:
                if not self._ready.done():
                    self._ready.set_exception(error)
                raise

        asyncio.run(serve())

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self.emulator = self._ready.result(WAIT_SECONDS)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT_SECONDS)

    def call(self, fn: Callable[[AgentEmulator], Any]) -> Any:
        """Run ``fn(emulator)`` on the emulator's loop (its state is only touched there)."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(self.emulator)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(WAIT_SECONDS)

    def wait_for(self, predicate: Callable[[AgentEmulator], bool]) -> None:
        """Wait (on the emulator's loop) until ``predicate(emulator)`` holds."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(
            self.emulator.wait_for(lambda: predicate(self.emulator), WAIT_SECONDS), self._loop
        )
        future.result(WAIT_SECONDS + 5)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    """A running master in a temporary work dir, stopped after the test."""
    process = MasterProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()
