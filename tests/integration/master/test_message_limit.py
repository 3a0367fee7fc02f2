"""One message limit end to end (protos.limits): batches the master sends are split under it.

Three messages of 7 MiB each fit the limit one by one; queued together for a batched agent
session they would make one 21 MiB ``MasterMessages``, which gRPC would refuse and the agent's
session would end (its tasks coming back TASK_LOST). The master splits the batch, and the agent
receives all three on its session, in order.
"""

from __future__ import annotations

import asyncio

from grpc import aio

from protos.limits import GRPC_MESSAGE_OPTIONS, MAX_MESSAGE_BYTES
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc
from tests.integration.master.clients import FakeAgent, quick_config, running_master, wait_for

DATA = 7 * 1024 * 1024


def test_messages_over_the_limit_together_go_out_in_several_batches() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            agent = FakeAgent(server.address, batched=True)
            # The agent's channel takes messages up to the one limit, as the real agent's does.
            await agent.channel.close(None)
            agent.channel = aio.insecure_channel(server.address, options=GRPC_MESSAGE_OPTIONS)
            agent.stub = agent_internal_pb2_grpc.AgentGatewayStub(agent.channel)
            try:
                agent_id = await agent.register("cpus:4;mem:1024")
                outbox = server.outbox
                core = server.core
                assert outbox is not None
                assert core is not None
                record = core.agent(agent_id)
                assert record is not None
                assert record.connection_id is not None
                channel = outbox.connections[record.connection_id]
                assert 3 * DATA > MAX_MESSAGE_BYTES
                for n in range(3):
                    message = agent_internal_pb2.MasterMessage()
                    message.framework_to_executor.executor_id.value = f"e{n}"
                    message.framework_to_executor.data = b"x" * DATA
                    channel.put(message)  # Queued together: one wake-up of the writer.
                await wait_for(lambda: len(agent.of("framework_to_executor")) == 3, "3 messages")
                received = agent.of("framework_to_executor")
                assert [m.framework_to_executor.executor_id.value for m in received] == [
                    "e0",
                    "e1",
                    "e2",
                ]
                assert core.agent(agent_id) is not None
                assert record.connection_id is not None  # The session survived.
            finally:
                await agent.close()

    asyncio.run(main())
