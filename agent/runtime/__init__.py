"""The agent's asyncio runtime: the I/O around the sans-I/O core in :mod:`agent.core`.

:class:`~agent.runtime.agent.AgentRuntime` owns the core's state and carries out its effects;
around it sit the master session (:mod:`~agent.runtime.master_link`), the executor API
(:mod:`~agent.runtime.executor_api`), containers (:mod:`~agent.runtime.containers`), the HTTP
API (:mod:`~agent.runtime.http`) and the command line (:mod:`~agent.runtime.main`).
"""

from agent.runtime.agent import VERSION, AgentRuntime
from agent.runtime.main import main, run_agent

__all__ = ["VERSION", "AgentRuntime", "main", "run_agent"]
