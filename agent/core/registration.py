"""The messages that open a session with the master: RegisterAgent or ReregisterAgent.

A pure query of the state (it changes nothing): a fresh agent registers; one with an id
reregisters with everything it still runs or must report, so the master can take it back
without killing its tasks.
"""

from __future__ import annotations

from agent.core.agent import AgentState
from protos.v1 import agent_internal_pb2

__all__ = ["hello_message"]


def hello_message(state: AgentState, boot_id: str, version: str) -> agent_internal_pb2.AgentMessage:
    """The first message of a session: RegisterAgent without an id, else ReregisterAgent."""
    if state.agent_id is None:
        return state.register_message(boot_id, version)
    return state.reregister_message(boot_id, version)
