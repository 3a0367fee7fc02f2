"""A small master side of the agent protocol, run in threads and steered by the test.

It registers whoever connects (ids ``agent-<n>``; a reregistration keeps its id), records every
message, can send Pings, and lets the test send any MasterMessage, acknowledge updates, or cut
the session. Waiting helpers block with a generous deadline and fail the test if it passes;
they never assert on how long something took. It serves ``Connect``, and ``ConnectBatched``
too when made with ``batched=True`` (otherwise it refuses that with UNIMPLEMENTED, as an older
master would, and counts the refusals).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import agent_internal_pb2_grpc as ai_grpc
from protos.v1 import mesos_pb2

WAIT = 60.0  # Upper bound of any wait; reaching it fails the test.


def _ack(update: ai.StatusUpdate) -> ai.MasterMessage:
    message = ai.MasterMessage()
    ack = message.status_update_acknowledgement
    ack.framework_id.CopyFrom(update.framework_id)
    ack.task_id.CopyFrom(update.status.task_id)
    ack.uuid = update.status.uuid
    return message


@dataclass(eq=False)
class Session:
    """One agent stream as the fake master sees it."""

    agent_id: str
    hello: ai.AgentMessage
    batched: bool = False
    received: list[ai.AgentMessage] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)  # Of each AgentMessages received.
    outbound: queue.Queue[ai.MasterMessage | None] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)

    def send(self, message: ai.MasterMessage) -> None:
        """Queue a message for the agent."""
        self.outbound.put(message)

    def close(self) -> None:
        """End the stream from the master's side."""
        self.outbound.put(None)


class FakeMaster(ai_grpc.AgentGatewayServicer):
    """A thread-based AgentGateway server on 127.0.0.1 (port 0)."""

    def __init__(
        self, ping_interval: float = 0.0, ping_timeout: float = 3600.0, batched: bool = False
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.batched = batched
        self.batched_refused = 0  # ConnectBatched calls refused (when not ``batched``).
        self.sessions: list[Session] = []
        self.send_pings = True  # False: go silent, as a master that is gone
        self.auto_ack = False  # Acknowledge every reliable update as it arrives.
        self._lock = threading.Condition()
        self._next_id = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        ai_grpc.add_AgentGatewayServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """End every session and stop serving."""
        for session in self.sessions:
            session.close()
        self._server.stop(0).wait()

    # -- the service --

    def Connect(
        self, request_iterator: Iterator[ai.AgentMessage], context: grpc.ServicerContext
    ) -> Iterator[ai.MasterMessage]:
        first = next(request_iterator)
        for batch in self._serve(first, request_iterator, [], context, batch_sizes=None):
            yield from batch

    def ConnectBatched(
        self, request_iterator: Iterator[ai.AgentMessages], context: grpc.ServicerContext
    ) -> Iterator[ai.MasterMessages]:
        if not self.batched:
            with self._lock:
                self.batched_refused += 1
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this fake master speaks Connect only")
        head = list(next(request_iterator).messages)
        sizes = [len(head)]

        def unpack() -> Iterator[ai.AgentMessage]:
            for batch in request_iterator:
                sizes.append(len(batch.messages))
                yield from batch.messages

        for batch in self._serve(head[0], unpack(), head[1:], context, batch_sizes=sizes):
            yield ai.MasterMessages(messages=batch)

    def _serve(
        self,
        first: ai.AgentMessage,
        request_iterator: Iterator[ai.AgentMessage],
        more: list[ai.AgentMessage],
        context: grpc.ServicerContext,
        *,
        batch_sizes: list[int] | None,
    ) -> Iterator[list[ai.MasterMessage]]:
        """One session: the registration reply, then what the test queues (``batch_sizes`` set:
        a ConnectBatched session, which sends whatever is queued together)."""
        batched = batch_sizes is not None
        reply = ai.MasterMessage()
        if first.HasField("register_agent"):
            with self._lock:
                self._next_id += 1
                agent_id = f"agent-{self._next_id}"
            registered = reply.agent_registered
            registered.agent_id.value = agent_id
            registered.ping_interval_seconds = self.ping_interval or 1.0
            registered.ping_timeout_seconds = self.ping_timeout
        else:
            agent_id = first.reregister_agent.agent_info.id.value
            reregistered = reply.agent_reregistered
            reregistered.agent_id.value = agent_id
            reregistered.ping_interval_seconds = self.ping_interval or 1.0
            reregistered.ping_timeout_seconds = self.ping_timeout
        session = Session(agent_id, first, batched, batch_sizes=batch_sizes or [])
        with self._lock:
            self.sessions.append(session)
            session.received.extend(more)
            self._lock.notify_all()
        reader = threading.Thread(target=self._read, args=(session, request_iterator), daemon=True)
        reader.start()
        if self.ping_interval:
            threading.Thread(target=self._ping, args=(session,), daemon=True).start()
        yield [reply]
        try:
            while context.is_active():
                try:
                    message = session.outbound.get(timeout=0.2)
                except queue.Empty:
                    continue
                batch: list[ai.MasterMessage] = []
                while message is not None:
                    batch.append(message)
                    if not batched:
                        break
                    try:  # Whatever else is queued goes in the same batch.
                        message = session.outbound.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    yield batch
                if message is None:
                    return  # Closed by the test.
        finally:
            session.ended.set()
            with self._lock:
                self._lock.notify_all()

    def _read(self, session: Session, requests: Iterator[ai.AgentMessage]) -> None:
        try:
            for message in requests:
                with self._lock:
                    session.received.append(message)
                    self._lock.notify_all()
                if self.auto_ack and message.status_update.status.uuid:
                    session.send(_ack(message.status_update))
        except grpc.RpcError:
            pass
        finally:
            session.ended.set()
            with self._lock:
                self._lock.notify_all()

    def _ping(self, session: Session) -> None:
        seq = 0
        while not session.ended.wait(self.ping_interval):
            if self.send_pings:
                seq += 1
                ping = ai.MasterMessage()
                ping.ping.seq = seq
                session.send(ping)

    # -- waiting --

    def wait_for(self, predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
        """Block until ``predicate()`` is true (re-checked on every message)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self._lock.wait(min(left, 0.2))

    def session(self, index: int = -1) -> Session:
        """A session (the newest by default), waiting for one to exist."""
        self.wait_for(lambda: len(self.sessions) > (index if index >= 0 else 0), "a session")
        return self.sessions[index]

    def updates(self, session: Session | None = None) -> list[ai.StatusUpdate]:
        """Status updates received (on one session, or on all of them)."""
        sessions = [session] if session is not None else list(self.sessions)
        with self._lock:
            return [
                m.status_update for s in sessions for m in s.received if m.HasField("status_update")
            ]

    def wait_update(
        self,
        task_id: str,
        state: mesos_pb2.TaskState.ValueType,
        after: int = 0,
        timeout: float = WAIT,
    ) -> ai.StatusUpdate:
        """The first update of ``task_id`` in ``state`` (among updates number ``after`` on)."""
        found: list[ai.StatusUpdate] = []

        def seen() -> bool:
            for update in self.updates()[after:]:
                if update.status.task_id.value == task_id and update.status.state == state:
                    found.append(update)
                    return True
            return False

        name = mesos_pb2.TaskState.Name(state)
        self.wait_for(seen, f"{name} of task {task_id}", timeout)
        return found[0]

    def messages(self, kind: str) -> list[ai.AgentMessage]:
        """Every received message with ``kind`` set, across sessions."""
        with self._lock:
            return [m for s in self.sessions for m in s.received if m.WhichOneof("payload") == kind]

    # -- acting --

    def send(self, message: ai.MasterMessage) -> None:
        """Send to the newest session."""
        self.session().send(message)

    def acknowledge(self, update: ai.StatusUpdate) -> None:
        """Acknowledge ``update`` on the newest session."""
        self.send(_ack(update))

    def wait_and_ack(
        self, task_id: str, state: mesos_pb2.TaskState.ValueType, after: int = 0
    ) -> ai.StatusUpdate:
        """Wait for an update, then acknowledge it."""
        update = self.wait_update(task_id, state, after)
        self.acknowledge(update)
        return update
