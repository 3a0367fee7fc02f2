"""What must hold: during the run, after every step, and at its end.

During the run the nodes check each core after every call (``Master.validate()``,
``AgentState.validate()``) and report an exception out of a core. :class:`CoreLogWatch` adds
what the cores contain themselves: an ERROR they log (a fault the master or the agent caught
and survived is still a bug, and the runtime would log it the same way).

At the end, once the faults stopped and the frameworks wound down, :func:`unsettled` lists
what is not yet as it must finally be (empty: settled):

* a master leads and every agent is registered with it and connected;
* every framework has seen a terminal state for every task it launched (or was removed), or
  TASK_UNREACHABLE where the agent will never return (its host registered anew);
* no agent runs a task or a container, and no agent core counts any resource as used;
* the master's view matches: no live task on any agent, and the allocator's view equals the
  agents' truth: on each agent, what it holds allocated is exactly what is offered (nothing
  double-counted, nothing leaked), and its total is the agent's.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING

from master.core import AgentPhase
from protos.resources import Resources

if TYPE_CHECKING:
    from emporion.testing.simulation.agent_node import AgentNode
    from emporion.testing.simulation.framework_node import FrameworkNode
    from emporion.testing.simulation.master_node import MasterNode
    from emporion.testing.simulation.world import World

__all__ = ["CoreLogWatch", "unsettled"]

WATCHED_LOGGERS = ("master", "agent", "framework_sdk")


class _Capture(logging.Handler):
    def __init__(self, world: World) -> None:
        super().__init__(logging.ERROR)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        if self.world.failed:
            return
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f" ({type(error).__name__}: {error})"
        self.world.violation("core-error-log", f"{record.name}: {text[:600]}")


class CoreLogWatch:
    """CoreLogWatch turns ERROR logs of the cores into violations while a run lasts.

    It also keeps the cores' INFO and WARNING lines out of the way (a run makes thousands):
    the watched loggers stop propagating to the root logger until the run ends.
    """

    def __init__(self, world: World) -> None:
        self._handler = _Capture(world)
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def __enter__(self) -> CoreLogWatch:
        for name in WATCHED_LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.ERROR)
            logger.propagate = False
            logger.addHandler(self._handler)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for logger, level, propagate in self._saved:
            logger.removeHandler(self._handler)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()


def unsettled(
    master: MasterNode, agents: list[AgentNode], frameworks: list[FrameworkNode]
) -> list[str]:
    """What is not yet as it must be at the end (see the module docstring); empty: settled."""
    problems: list[str] = []
    core = master.core
    if core is None:
        return ["no master leads"]
    state = core.state
    allocator = state.allocator
    for node in agents:
        if node.left:
            continue
        agent_core = node.state
        if agent_core is None:
            problems.append(f"{node.name} is down")
            continue
        agent_id = agent_core.agent_id
        if agent_id is None:
            problems.append(f"{node.name} never registered")
            continue
        live = node.live_containers()
        if live:
            problems.append(f"{node.name} still runs containers {sorted(live)[:5]}")
        used = agent_core.allocated()
        if used:
            problems.append(f"{node.name}'s core counts {used} as used")
        running = [
            f"{task.task_id}:{task.state}"
            for executor in agent_core.executors()
            for task in executor.tasks.values()
            if not task.terminal
        ]
        if running:
            problems.append(f"{node.name} holds live tasks {running[:5]}")
        agent = state.agents.get(agent_id)
        if agent is None or agent.phase is not AgentPhase.CONNECTED:
            phase = "unknown" if agent is None else agent.phase.name
            problems.append(f"{node.name} ({agent_id}) is {phase} at the master")
            continue
        master_live = [t.task_id for t in agent.tasks.values() if not t.terminal]
        if master_live:
            problems.append(f"the master counts live tasks {master_live[:5]} on {node.name}")
        if not agent.in_allocator:
            problems.append(f"{node.name} is not in the allocator")
            continue
        held = Resources.EMPTY
        for resources in allocator.agent_allocation(agent_id).values():
            held = held + resources
        offered = Resources.EMPTY
        for offer_id in agent.offers:
            offered = offered + state.offers[offer_id].resources
        if held != offered + used:
            by_holder = {
                f"{framework_id}/{role}": str(resources)
                for (framework_id, role), resources in allocator.agent_allocation(agent_id).items()
            }
            problems.append(
                f"allocator holds {held} on {node.name} ({by_holder}), but its offers are"
                f" {offered or 'nothing'} and the agent uses {used or 'nothing'}"
            )
        total = allocator.agent_total(agent_id)
        if total != agent.total or total.flatten() != node.total:
            problems.append(
                f"{node.name}'s total: allocator {total}, master {agent.total}, agent {node.total}"
            )
    return problems
