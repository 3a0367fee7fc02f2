"""Container isolation for the Emporion agent.

Each container runs in its own session, in a cgroup (v2 where the host has it, else v1) with
CPU quota and shares, a memory limit and a pids limit from the task's resources, in new PID
and mount namespaces when root, under rlimits, with stdout and stderr in its sandbox. Where
none of that is possible a posix fallback still runs tasks and the report says what is
missing. Everything here is synchronous and non-blocking (``destroy`` and ``launch`` block for
milliseconds) so that the agent's asyncio runtime can drive it; see docs/isolation.md.

Start with ``select_isolation(mode)``, log ``isolation.report``, then ``launch(spec)``.
"""

from agent.isolation.container import Container
from agent.isolation.detect import IsolationReport
from agent.isolation.errors import IsolationError, IsolationUnavailableError, LaunchError
from agent.isolation.isolation import Isolation
from agent.isolation.limits import ContainerLimits
from agent.isolation.selection import select_isolation
from agent.isolation.spec import LaunchSpec, validate_container_id
from agent.isolation.state import ContainerState, ContainerStats, ExitInfo

__all__ = [
    "Container",
    "ContainerLimits",
    "ContainerState",
    "ContainerStats",
    "ExitInfo",
    "Isolation",
    "IsolationError",
    "IsolationReport",
    "IsolationUnavailableError",
    "LaunchError",
    "LaunchSpec",
    "select_isolation",
    "validate_container_id",
]
