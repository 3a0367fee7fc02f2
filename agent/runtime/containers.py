"""ContainerManager: the runtime's side of the isolation layer — launch, watch, signal, destroy.

Launches wait in a :class:`~agent.runtime.launch_queue.FairLaunchQueue` and at most
``max_concurrent`` run at a time (default: two per CPU, from 8 to 32), each on a thread of the
manager's own pool, so that thousands of launches asked for at once neither starve the event
loop (which must keep answering the master's pings) nor make another framework's task wait
behind all of them: frameworks take turns. A launch destroyed while it still waits (its task
killed, its framework torn down, the agent shut down) leaves the queue at once and creates
nothing: it is reported as a failed launch, which the core turns into TASK_KILLED for a task
being killed.

A launch fetches the URIs into the sandbox, then starts the container in a worker thread (the
fork and cgroup writes take milliseconds). The end of a container's main process is learnt
from its pidfd through the event loop (also for containers recovered after an agent restart,
which are not the agent's children); the container is then destroyed — every remaining
process killed, its cgroups removed — before its exit is reported, so an ended container
leaves nothing behind.

Before anything is fetched, the task's user is decided by the agent's
:class:`~agent.isolation.users.UserPolicy` (``--switch-user``, ``--allow-root-tasks``); a
refusal fails the launch naming the user. With ``disk_watch_interval``, the ``disk`` resource
is enforced: every interval the sandbox of each container with a disk limit is measured
(:mod:`agent.isolation.disk`), and a container over its limit is destroyed and its exit marked
``disk_exceeded`` (TASK_FAILED, REASON_CONTAINER_LIMITATION_DISK).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from agent.isolation.disk import describe_bytes, disk_usage
from agent.isolation.users import UserPolicy, UserRefusedError
from agent.runtime.launch_queue import FairLaunchQueue
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "CANCELLED_LAUNCH",
    "ContainerManager",
    "NeverStarted",
    "PreparedLaunch",
    "default_max_concurrent",
    "limits_for",
]

log = logging.getLogger(__name__)

_POLL_INTERVAL = 0.1  # Only where pidfds are unavailable.

CANCELLED_LAUNCH = "the launch was cancelled before its container was created"
"""How a launch destroyed while it waited in the queue is reported (as a failed launch)."""

NEVER_STARTED = "the agent restarted while the container was being launched, before its command ran"


@dataclass(frozen=True)
class NeverStarted:
    """After a restart: the agent had not recorded the container, and its command never ran
    (the agent died before spawning its launch helper, or the helper failed before running
    anything). The runtime tells the core (``ContainerNeverStarted``), which launches a
    command task again and fails any other launch, ``message`` saying why."""

    message: str = NEVER_STARTED


def default_max_concurrent() -> int:
    """Launches in progress at once by default: two per CPU, at least 8, at most 32.

    A launch waits on its helper as much as it computes, so a few per CPU keep the CPUs busy;
    on 2 cores, 8 at once gave a quarter of the accept-to-running time of 2 at once
    (``bench.launch_latency --concurrency 8``) while the agent stayed as reachable under 5,000
    queued launches (``bench.agent_backpressure``). Far more would only make each slower.
    """
    return max(8, min(32, 2 * (os.cpu_count() or 1)))


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
    framework_id: str | None = None
    """Whose turn the launch waits for; None: the ``MESOS_FRAMEWORK_ID`` of its environment."""

    def owner(self) -> str:
        """The framework whose queue this launch waits in."""
        if self.framework_id is not None:
            return self.framework_id
        return self.env.get("MESOS_FRAMEWORK_ID", "")


class ContainerManager:
    """ContainerManager owns the live Container handles and reports what happens to them.

    ``on_launched(id, container)``, ``on_launch_failed(id, message)`` and
    ``on_exited(id, exit)`` run on the event loop, never from inside a call to the manager.
    """

    def __init__(
        self,
        isolation: Isolation,
        fetch_cache_dir: Path | None,
        on_launched: Callable[[str, Container], None],
        on_launch_failed: Callable[[str, str], None],
        on_exited: Callable[[str, ContainerExit], None],
        *,
        max_concurrent: int | None = None,
        users: UserPolicy | None = None,
        readonly_dirs: Sequence[Path] = (),
        disk_watch_interval: float | None = None,
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if disk_watch_interval is not None and disk_watch_interval <= 0:
            raise ValueError(f"disk_watch_interval must be > 0, not {disk_watch_interval}")
        self.users = users or UserPolicy()
        self.readonly_dirs = tuple(readonly_dirs)
        """Read-only for tasks with a mount namespace (the work dir), sandboxes excepted."""
        self.disk_watch_interval = disk_watch_interval
        self._disk_limits: dict[str, tuple[Path, int]] = {}  # cid -> (sandbox, bytes)
        self._disk_exceeded: dict[str, str] = {}  # cid -> why it was killed
        self._disk_task: asyncio.Task[None] | None = None
        self.isolation = isolation
        self._fetch_cache_dir = fetch_cache_dir
        self._on_launched = on_launched
        self._on_launch_failed = on_launch_failed
        self._on_exited = on_exited
        self.max_concurrent = max_concurrent or default_max_concurrent()
        self.containers: dict[str, Container] = {}
        self.queue: FairLaunchQueue[Callable[[], PreparedLaunch]] = FairLaunchQueue()
        self.launching: set[str] = set()  # Taken from the queue, not yet reported.
        self.launches_cancelled = 0  # Destroyed while queued (nothing was created).
        self._pool = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="launch")
        self._cancelled: deque[str] = deque()  # Cancelled launches not yet reported.
        self._pidfds: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending: set[str] = set()

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- launching --

    def launch(self, launch: PreparedLaunch) -> None:
        """Queue ``launch``; it starts in its framework's turn, and the callbacks report how
        it went."""
        self.enqueue(launch.container_id, launch.owner(), lambda: launch)

    def enqueue(
        self, container_id: str, framework_id: str, prepare: Callable[[], PreparedLaunch]
    ) -> None:
        """Queue a launch that ``prepare()`` makes ready (sandbox, environment) when its turn
        comes: a launch cancelled while queued creates nothing at all. An exception from
        ``prepare`` is reported as a failed launch naming it."""
        cid = container_id
        if cid in self.queue or cid in self.launching or cid in self.containers:
            log.warning("Container %s is already being launched", cid)
            return
        self.queue.put(framework_id, cid, prepare)
        self._start_next()

    def _start_next(self) -> None:
        """Start queued launches while there are free slots."""
        while len(self.launching) < self.max_concurrent:
            taken = self.queue.take()
            if taken is None:
                return
            cid, prepare = taken
            self.launching.add(cid)
            self._spawn(self._launch(cid, prepare), f"launch-{cid}")

    def _cancel_queued(self, cid: str) -> bool:
        """Take ``cid`` out of the queue (nothing created); reported soon as a failed launch."""
        if self.queue.remove(cid) is None:
            return False
        self.launches_cancelled += 1
        self._cancelled.append(cid)
        if len(self._cancelled) == 1:
            self._spawn(self._report_cancelled(), "report-cancelled-launches")
        return True

    async def _report_cancelled(self) -> None:
        """Report cancelled launches one at a time, yielding to the loop after each: a
        teardown cancels thousands at once, and reporting them in one go would hold the loop
        (and the master's pings) for seconds."""
        while self._cancelled:
            await asyncio.sleep(0)
            self._on_launch_failed(self._cancelled.popleft(), CANCELLED_LAUNCH)

    async def _launch(self, cid: str, prepare: Callable[[], PreparedLaunch]) -> None:
        try:
            try:
                launch = prepare()
            except Exception as error:  # Whatever it is, this launch fails, not the agent.
                cause = (
                    str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
                )
                cause = cause if len(cause) <= 1000 else f"{cause[:1000]}..."
                self._on_launch_failed(cid, f"the container could not be prepared: {cause}")
                return
            await self._start(launch)
        finally:
            self.launching.discard(cid)
            self._start_next()

    async def _start(self, launch: PreparedLaunch) -> None:
        cid = launch.container_id
        loop = asyncio.get_running_loop()
        try:
            try:
                user = self.users.user_for(launch.user)
            except UserRefusedError as error:
                self._on_launch_failed(cid, f"cannot launch container {cid}: {error}")
                return
            if launch.uris:
                try:
                    await fetch_uris(launch.uris, launch.sandbox, self._fetch_cache_dir, user)
                except FetchError as error:
                    self._on_launch_failed(cid, str(error))
                    return
            spec = LaunchSpec(
                container_id=cid,
                argv=list(launch.argv),
                env=dict(launch.env),
                sandbox=launch.sandbox,
                limits=limits_for(launch.resources),
                user=user,
                shell=launch.shell,
                readonly_dirs=self.readonly_dirs,
            )
            container = await loop.run_in_executor(self._pool, self.isolation.launch, spec)
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
        self._limit_disk(cid, launch.sandbox, launch.resources)

    # -- disk limits --

    def limit_disk(self, cid: str, resources: Resources) -> None:
        """Enforce the ``disk`` of ``resources`` on a running container (one recovered after a
        restart: its limit is not in its checkpoint, the core knows it)."""
        container = self.containers.get(cid)
        if container is not None:
            self._limit_disk(cid, container.sandbox, resources)

    def _limit_disk(self, cid: str, sandbox: Path, resources: Resources) -> None:
        disk_mb = resources.get("disk")
        if self.disk_watch_interval is None or not disk_mb:
            self._disk_limits.pop(cid, None)
            return
        self._disk_limits[cid] = (sandbox, int(disk_mb * (1 << 20)))
        if self._disk_task is None:
            self._disk_task = asyncio.get_running_loop().create_task(
                self._watch_disk(self.disk_watch_interval), name="container-disk-watch"
            )

    async def _watch_disk(self, interval: float) -> None:
        """Measure every limited sandbox each ``interval``; destroy containers over their
        limit. Ends when no container has a disk limit (the next one starts it again)."""
        try:
            while self._disk_limits:
                await asyncio.sleep(interval)
                for cid, (sandbox, limit) in list(self._disk_limits.items()):
                    if cid not in self._disk_limits or cid not in self.containers:
                        continue
                    try:
                        used = await asyncio.to_thread(disk_usage, sandbox)
                    except OSError as error:
                        log.warning("Disk usage of container %s unknown: %s", cid, error)
                        continue
                    if used > limit and cid not in self._disk_exceeded:
                        self._disk_exceeded[cid] = (
                            f"the sandbox uses {describe_bytes(used)}, over the container's"
                            f" disk limit of {describe_bytes(limit)}"
                        )
                        log.warning("Container %s: %s", cid, self._disk_exceeded[cid])
                        self.destroy(cid)
        finally:
            self._disk_task = None

    # -- recovery --

    def recover(
        self, container_id: str, state: Mapping[str, object] | None
    ) -> ContainerExit | NeverStarted | None:
        """Reattach to a checkpointed container; None if it runs, else how it ended.

        ``state`` None: the agent died before recording the container (its launch was in
        progress or queued). The isolation layer's own records of the launch then say whether
        its helper was spawned: if so the container is adopted (or, if it ended meanwhile, its
        recorded exit status is returned); if not, :class:`NeverStarted`.
        """
        if state is None:
            return self._adopt(container_id)
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

    def _adopt(self, container_id: str) -> ContainerExit | NeverStarted | None:
        try:
            container = self.isolation.find(container_id)
        except (ValueError, IsolationError, OSError) as error:
            return ContainerExit(message=f"the container could not be recovered: {error}")
        if container is None:
            return NeverStarted()
        info = container.poll()
        if info is not None:  # It ended while the agent was down.
            try:
                container.destroy()
            except IsolationError as error:
                log.error("Container %s: %s", container_id, error)
            exit = _to_exit(container.poll() or info)
            log.info(
                "Container %s, being launched when the agent died, ended meanwhile: %s",
                container_id,
                exit.describe(),
            )
            return exit
        log.info(
            "Adopted container %s, whose launch was in progress when the agent died", container_id
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
        try:
            # destroy() reaps the process and reads how it ended (from its cgroups' files)
            # first: in the thread, not on the loop; poll() below returns what it read.
            await asyncio.to_thread(container.destroy, keep_run_dir=True)
        except IsolationError as error:
            log.error("Container %s: %s", cid, error)
        info = container.poll()
        del self.containers[cid]
        self._ending.discard(cid)
        self._disk_limits.pop(cid, None)
        exit = _to_exit(info)
        if (disk := self._disk_exceeded.pop(cid, None)) is not None and not exit.oom_killed:
            exit = dataclasses.replace(exit, disk_exceeded=True, message=disk)
        self._on_exited(cid, exit)
        # Only now, the exit being recorded (the core checkpoints the task's update as it
        # handles the exit): an agent killed before this learns it again from the run dir.
        # In a thread: rmtree and the cgroup roots' rmdir take milliseconds on a busy host,
        # which the loop (other launches' reports, the master's pings) must not wait for.
        await asyncio.to_thread(container.remove_run_dir)

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
        """Kill every process of a container; its exit is then reported as usual. A launch
        still queued is cancelled instead: reported as a failed launch (:data:`CANCELLED_LAUNCH`).
        """
        if self._cancel_queued(cid):
            return
        container = self.containers.get(cid)
        if container is None:
            return
        self._spawn(self._destroy(cid, container), f"destroy-{cid}")

    async def _destroy(self, cid: str, container: Container) -> None:
        try:
            await asyncio.to_thread(container.destroy, keep_run_dir=True)
        except IsolationError as error:
            log.error("Destroying container %s: %s", cid, error)
        self._ended(cid)  # The pidfd may not have fired yet; ending twice is harmless.

    def update(self, cid: str, resources: Resources) -> None:
        """Change a running container's limits."""
        container = self.containers.get(cid)
        if container is None:
            return
        self._limit_disk(cid, container.sandbox, resources)
        try:
            container.update(limits_for(resources))
        except (IsolationError, ValueError, OSError) as error:
            log.warning("Updating container %s failed: %s", cid, error)

    def cancel_queued(self) -> int:
        """Cancel every launch still queued (each reported as a failed launch); how many."""
        cancelled = 0
        for cid in self.queue:
            cancelled += self._cancel_queued(cid)
        return cancelled

    async def destroy_all(self) -> None:
        """Cancel queued launches, destroy every container, and wait until each exit has been
        reported."""
        self.cancel_queued()
        for cid in list(self.containers):
            self.destroy(cid)
        await self.wait_idle()

    async def wait_idle(self) -> None:
        """Wait for launches, destroys and exit reports in progress."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop watching (containers keep running: they may be recovered later); launches
        still queued are dropped unreported (the agent is going)."""
        while self.queue.take() is not None:
            pass
        if self._disk_task is not None:
            self._disk_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._disk_task
        for cid in list(self._pidfds):
            fd = self._pidfds.pop(cid)
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
