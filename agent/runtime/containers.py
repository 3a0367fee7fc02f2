"""ContainerManager: the runtime's side of the isolation layer — launch, watch, signal, destroy.

A launch fetches the URIs into the sandbox, then starts the container in a worker thread (the
fork and cgroup writes take milliseconds). The end of a container's main process is learnt
from its pidfd through the event loop (also for containers recovered after an agent restart,
which are not the agent's children); the container is then destroyed — every remaining
process killed, its cgroups removed — before its exit is reported, so an ended container
leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.core import ContainerExit
from agent.fetcher import FetchError, fetch_uris
from agent.isolation import (
    Container,
    ContainerLimits,
    ContainerState,
    ExitInfo,
    Isolation,
    IsolationError,
    LaunchError,
    LaunchSpec,
)
from agent.isolation.container import EXIT_STATUS_FILE
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = ["ContainerManager", "PreparedLaunch", "limits_for"]

log = logging.getLogger(__name__)

_POLL_INTERVAL = 0.1  # Only where pidfds are unavailable.


def limits_for(resources: Resources) -> ContainerLimits:
    """Container limits from resources: CPU and memory where given, unlimited otherwise."""
    cpus = resources.get("cpus")
    mem = resources.get("mem")
    if mem:
        return ContainerLimits.from_resources(cpus, mem) if cpus else _mem_only(mem)
    return ContainerLimits(cpus=cpus or None, mem_bytes=None)


def _mem_only(mem_mb: float) -> ContainerLimits:
    limits = ContainerLimits.from_resources(1.0, mem_mb)
    return ContainerLimits(cpus=None, mem_bytes=limits.mem_bytes, pids_max=limits.pids_max)


def _to_exit(info: ExitInfo | None) -> ContainerExit:
    if info is None:
        return ContainerExit(message="the container's exit status is unknown")
    return ContainerExit(info.status, info.signal, info.oom_killed, info.message)


def _recorded_exit(state: Mapping[str, object]) -> ContainerExit | None:
    """The exit status the container's helper recorded, read before ``recover`` removes it."""
    run_dir = state.get("run_dir")
    if not isinstance(run_dir, str):
        return None
    try:
        kind, number = (Path(run_dir) / EXIT_STATUS_FILE).read_text().split()
        value = int(number)
    except (OSError, ValueError):
        return None
    if kind == "exit":
        return ContainerExit(status=value, message=f"the command exited with status {value}")
    return ContainerExit(signal=value, message=f"the command was killed by signal {value}")


@dataclass(frozen=True)
class PreparedLaunch:
    """Everything needed to start one container, computed by the runtime."""

    container_id: str
    argv: Sequence[str]
    shell: bool
    env: Mapping[str, str]
    sandbox: Path
    resources: Resources
    user: str | None
    uris: Sequence[mesos_pb2.CommandInfo.URI]


class ContainerManager:
    """ContainerManager owns the live Container handles and reports what happens to them.

    ``on_launched(id, container)``, ``on_launch_failed(id, message)`` and
    ``on_exited(id, exit)`` run on the event loop.
    """

    def __init__(
        self,
        isolation: Isolation,
        fetch_cache_dir: Path | None,
        on_launched: Callable[[str, Container], None],
        on_launch_failed: Callable[[str, str], None],
        on_exited: Callable[[str, ContainerExit], None],
    ) -> None:
        self.isolation = isolation
        self._fetch_cache_dir = fetch_cache_dir
        self._on_launched = on_launched
        self._on_launch_failed = on_launch_failed
        self._on_exited = on_exited
        self.containers: dict[str, Container] = {}
        self._pidfds: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending: set[str] = set()

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- launching --

    def launch(self, launch: PreparedLaunch) -> None:
        """Start ``launch`` in the background; the callbacks report how it went."""
        self._spawn(self._launch(launch), f"launch-{launch.container_id}")

    async def _launch(self, launch: PreparedLaunch) -> None:
        cid = launch.container_id
        try:
            if launch.uris:
                try:
                    await fetch_uris(
                        launch.uris, launch.sandbox, self._fetch_cache_dir, launch.user
                    )
                except FetchError as error:
                    self._on_launch_failed(cid, str(error))
                    return
            spec = LaunchSpec(
                container_id=cid,
                argv=list(launch.argv),
                env=dict(launch.env),
                sandbox=launch.sandbox,
                limits=limits_for(launch.resources),
                user=launch.user,
                shell=launch.shell,
            )
            container = await asyncio.to_thread(self.isolation.launch, spec)
        except (LaunchError, IsolationError, ValueError, OSError) as error:
            self._on_launch_failed(cid, str(error))
            return
        except Exception as error:  # A launch must always end in a report, never hang.
            log.exception("Launching container %s failed", cid)
            self._on_launch_failed(cid, f"unexpected error: {error!r}")
            return
        self.containers[cid] = container
        self._on_launched(cid, container)
        self._watch(cid, container)

    # -- recovery --

    def recover(
        self, container_id: str, state: Mapping[str, object] | None
    ) -> ContainerExit | None:
        """Reattach to a checkpointed container; None if it runs, else how it ended."""
        if state is None:
            return ContainerExit(message="the agent died before recording the container")
        recorded = _recorded_exit(state)
        try:
            container = self.isolation.recover(ContainerState.from_dict(dict(state)))
        except (ValueError, IsolationError) as error:
            return ContainerExit(message=f"the container could not be recovered: {error}")
        if container is None:
            return recorded or ContainerExit(
                message="the container had ended when the agent restarted; its exit status is"
                " unknown"
            )
        self.containers[container_id] = container
        self._watch(container_id, container)
        return None

    def cleanup_orphans(self, known: set[str]) -> list[str]:
        """Destroy containers of this agent's isolation root that are not in ``known``."""
        return self.isolation.cleanup_orphans(known)

    # -- watching --

    def _watch(self, cid: str, container: Container) -> None:
        fd = container.pidfd()
        if fd is None:
            if container.poll() is not None:
                self._ended(cid)
            else:
                self._spawn(self._poll(cid, container), f"poll-{cid}")
            return
        self._pidfds[cid] = fd
        asyncio.get_running_loop().add_reader(fd, self._ended, cid)

    async def _poll(self, cid: str, container: Container) -> None:
        while container.poll() is None:
            await asyncio.sleep(_POLL_INTERVAL)
        self._ended(cid)

    def _ended(self, cid: str) -> None:
        fd = self._pidfds.pop(cid, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        if cid in self._ending or cid not in self.containers:
            return
        self._ending.add(cid)
        self._spawn(self._finish(cid), f"finish-{cid}")

    async def _finish(self, cid: str) -> None:
        container = self.containers[cid]
        info = container.poll()
        try:
            await asyncio.to_thread(container.destroy)
        except IsolationError as error:
            log.error("Container %s: %s", cid, error)
        info = container.poll() or info
        del self.containers[cid]
        self._ending.discard(cid)
        self._on_exited(cid, _to_exit(info))

    # -- control --

    def signal(self, cid: str, signum: int) -> None:
        """Send ``signum`` to every process of a container."""
        container = self.containers.get(cid)
        if container is not None:
            try:
                container.signal_all(signum)
            except (IsolationError, OSError) as error:
                log.warning("Signalling container %s failed: %s", cid, error)

    def destroy(self, cid: str) -> None:
        """Kill every process of a container; its exit is then reported as usual."""
        container = self.containers.get(cid)
        if container is None:
            return
        self._spawn(self._destroy(cid, container), f"destroy-{cid}")

    async def _destroy(self, cid: str, container: Container) -> None:
        try:
            await asyncio.to_thread(container.destroy)
        except IsolationError as error:
            log.error("Destroying container %s: %s", cid, error)
        self._ended(cid)  # The pidfd may not have fired yet; ending twice is harmless.

    def update(self, cid: str, resources: Resources) -> None:
        """Change a running container's limits."""
        container = self.containers.get(cid)
        if container is None:
            return
        try:
            container.update(limits_for(resources))
        except (IsolationError, ValueError, OSError) as error:
            log.warning("Updating container %s failed: %s", cid, error)

    async def destroy_all(self) -> None:
        """Destroy every container and wait until each exit has been reported."""
        for cid in list(self.containers):
            self.destroy(cid)
        await self.wait_idle()

    async def wait_idle(self) -> None:
        """Wait for launches, destroys and exit reports in progress."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop watching (containers keep running: they may be recovered later)."""
        for cid in list(self._pidfds):
            fd = self._pidfds.pop(cid)
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
