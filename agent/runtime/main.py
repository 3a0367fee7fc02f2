"""``python -m agent`` / ``emporion agent``: run one agent until a signal or the master stops it.

Signals: SIGTERM and SIGINT stop the agent so that it can restart and recover (the tasks of
checkpointing frameworks keep running; the others are destroyed, since nothing could recover
them). SIGUSR1 shuts the agent down for good, as in Mesos: every executor and task is killed,
the master is told the agent is gone, and the checkpoint is forgotten.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.config import AgentConfig, ConfigError, add_agent_arguments, config_from_namespace
from agent.isolation import Isolation, IsolationUnavailableError, select_isolation
from agent.runtime.agent import AgentRuntime
from protos.resources import Resources, likely_typos

__all__ = ["isolation_root_name", "main", "run", "run_agent", "work_dir_problem"]

log = logging.getLogger("agent")


def isolation_root_name(work_dir: Path) -> str:
    """The cgroup root and run directory name of the agent using ``work_dir``.

    Several agents may share a host (``emporion local``); each cleans up only its own orphans.
    """
    digest = hashlib.sha256(str(work_dir).encode()).hexdigest()[:12]
    return f"emporion-{digest}"


def banner(runtime: AgentRuntime) -> str:
    """The line printed at start: where the agent serves (parsed by tests and tools)."""
    assert runtime.http is not None
    return (
        f"emporion agent: http={runtime.config.ip}:{runtime.http.port}"
        f" executor=127.0.0.1:{runtime.executor_port}"
        f" master={runtime.config.master.target} work_dir={runtime.config.work_dir}"
    )


async def run_agent(config: AgentConfig, isolation: Isolation) -> int:
    """Run an agent until it is stopped; return the exit status."""
    runtime = AgentRuntime(config, isolation)
    try:
        await runtime.start()
    except OSError:
        # A port in use: close what started before it, or gRPC's executor server and the
        # launch helpers outlive the loop and fail noisily at interpreter exit.
        if runtime.executor_server is not None:
            await runtime.executor_server.stop(0)
        await runtime.containers.close()
        raise
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, runtime.request_stop, False)
    loop.add_signal_handler(signal.SIGINT, runtime.request_stop, False)
    loop.add_signal_handler(signal.SIGUSR1, runtime.request_stop, True)
    # Only now: whoever waits for the banner may signal the agent at once.
    print(banner(runtime), flush=True)
    await runtime.stopped.wait()
    log.info("Agent stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags and ``EMPORION_*`` variables, pick the isolation, run the agent."""
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="Run an Emporion agent. Every flag may also be given as an EMPORION_*"
        " variable (--work-dir as EMPORION_WORK_DIR).",
    )
    add_agent_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        config = config_from_namespace(ns, os.environ)
    except ConfigError as error:
        print(f"agent: {error}", file=sys.stderr)
        return 2
    return run(config)


def work_dir_problem(work_dir: Path) -> str | None:
    """Why the agent could not keep its sandboxes and checkpoint in ``work_dir`` (None: it
    can), found before anything starts: otherwise a bare ``[Errno 13]`` surfaces from deep in
    recovery, naming neither the flag nor what to do."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create it: {error.strerror or error}"
    if not work_dir.is_dir():
        return "it is not a directory"
    if not os.access(work_dir, os.W_OK | os.X_OK):
        return f"not writable by this user (uid {os.geteuid()})"
    return None


def run(config: AgentConfig) -> int:
    """Run an agent with ``config`` (logging to stderr); the exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    problem = work_dir_problem(config.work_dir)
    if problem is not None:
        print(f"emporion agent: --work-dir {config.work_dir}: {problem}", file=sys.stderr)
        return 2
    try:
        isolation = select_isolation(
            config.isolation,  # type: ignore[arg-type]
            root_name=isolation_root_name(config.work_dir),
        )
    except IsolationUnavailableError as error:
        print(f"emporion agent: --isolation {config.isolation}: {error}", file=sys.stderr)
        return 2
    log.info("%s", isolation.report.summary())
    for warning in likely_typos(config.resources or Resources.EMPTY):
        log.warning("--resources: %s", warning)
    try:
        return asyncio.run(run_agent(config, isolation))
    except OSError as error:
        # A port in use or a directory it may not write: one line a person can act on.
        print(f"emporion agent: {error}", file=sys.stderr)
        return 2
