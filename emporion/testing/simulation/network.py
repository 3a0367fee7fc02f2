"""The simulated network between the master and its clients (agents and frameworks).

It can do only what the real transports can. A gRPC stream (an agent's ``ConnectBatched``
session, a framework's subscription) is ordered and reliable while its connection lives:
messages are delayed, never reordered, lost or duplicated on it. Faults happen to connections:

* a connection **breaks** and every message still in flight on it is lost. A *noisy* break (a
  process died, a connection reset) is seen by each side after a short detection delay; a
  *silent* one (a cable pulled, a host frozen) is never reported, and each side finds out by its
  own timeouts (pings, heartbeats), as over real TCP;
* a **partition** cuts one client off the master: its connections break silently and new ones
  fail, until it heals;
* the master **crashes**: every connection to it breaks noisily, and calls fail until a new
  master leads;
* **slow** periods: latency spikes up to about a second.

Loss, reordering and duplication are what clients make of this: after a break, a client
reconnects and resends (an agent its unacknowledged status updates, a framework its calls), so
the master sees duplicates; and what one connection carried can overtake what a broken one lost.

Unary calls (a framework's ACCEPT, KILL, ...) go in order on the client's channel; a reply that
cannot arrive (the call's connection broke meanwhile) turns into an UNAVAILABLE error after a
timeout, so the client cannot tell whether the master took the call.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from emporion.testing.simulation.loop import SimLoop

__all__ = ["CALL_TIMEOUT", "Link", "Network"]

CALL_TIMEOUT = 2.0
"""Seconds after which a unary call whose reply was lost fails (UNAVAILABLE)."""


class Link:
    """Link is one stream between a client and the master; see the module docstring.

    ``on_client_closed`` / ``on_master_closed`` are called when the client / the master learns
    that the stream ended (set them right after :meth:`Network.connect`).
    """

    def __init__(self, net: Network, client: str, link_id: int) -> None:
        self.net = net
        self.client = client
        self.link_id = link_id
        self.epoch = net.master_epoch
        self.alive = True
        self.connection_id: str | None = None
        """The master's id of an agent session on this link (set when it arrives there)."""
        self._client_last = net.loop.now
        self._master_last = net.loop.now
        self._client_told = False
        self._master_told = False
        self.on_client_closed: Callable[[], None] = lambda: None
        self.on_master_closed: Callable[[], None] = lambda: None

    def _usable(self) -> bool:
        return self.alive and self.net.master_epoch == self.epoch

    def to_master(self, deliver: Callable[[], None]) -> None:
        """Send toward the master: ``deliver`` runs there, in order, if the link still lives."""
        if not self._usable():
            return
        loop = self.net.loop
        self._master_last = at = max(loop.now + self.net.latency(), self._master_last)
        loop.at(at, lambda: deliver() if self._usable() else None)

    def to_client(self, deliver: Callable[[], None]) -> None:
        """Send toward the client: ``deliver`` runs there, in order, if the link still lives."""
        if not self._usable():
            return
        loop = self.net.loop
        self._client_last = at = max(loop.now + self.net.latency(), self._client_last)
        loop.at(at, lambda: deliver() if self._usable() else None)

    def cut(self, *, noisy: bool) -> None:
        """The connection breaks: what is in flight is lost; a noisy break is reported to both
        sides after a detection delay, a silent one to neither."""
        if not self.alive:
            return
        self.alive = False
        self.net.links.pop(self.link_id, None)
        if noisy:
            net = self.net
            net.loop.after(net.detection_delay(), self._tell_client)
            net.loop.after(net.detection_delay(), self._tell_master)

    def close_by_master(self) -> None:
        """The master ends the stream after what it sent: the client learns once it has all."""
        if not self._usable():
            return
        self.to_client(self._end)

    def close_by_client(self) -> None:
        """The client ends the stream after what it sent: the master learns once it has all."""
        if not self._usable():
            self.alive = False
            return
        self.to_master(self._end)

    def _end(self) -> None:
        self.alive = False
        self.net.links.pop(self.link_id, None)
        self._tell_client()
        self._tell_master()

    def _tell_client(self) -> None:
        if not self._client_told:
            self._client_told = True
            self.on_client_closed()

    def _tell_master(self) -> None:
        if not self._master_told and self.net.master_epoch == self.epoch:
            self._master_told = True
            self.on_master_closed()


class Network:
    """Network connects clients to the one master slot; see the module docstring."""

    def __init__(self, loop: SimLoop, rng: random.Random) -> None:
        self.loop = loop
        self.rng = rng
        self.master_up = False
        self.master_epoch = 0
        """Bumped at every master crash: links and calls of an older master are dead."""
        self.isolated: dict[str, float] = {}
        """Client -> when its partition heals."""
        self.slow_until = 0.0
        self.links: dict[int, Link] = {}
        self._next_link = 0
        self._call_last: dict[str, float] = {}

    # -- timing ---------------------------------------------------------------------------------

    def latency(self) -> float:
        """One message's delay: a millisecond or a few, up to a second while slow."""
        rng = self.rng
        if self.loop.now < self.slow_until and rng.random() < 0.5:
            return rng.uniform(0.05, 1.0)
        return rng.uniform(0.0005, 0.004)

    def detection_delay(self) -> float:
        """How long a side takes to see a noisy break."""
        return self.rng.uniform(0.001, 0.5)

    def reachable(self, client: str) -> bool:
        """Whether ``client`` can reach a serving master now."""
        return self.master_up and client not in self.isolated

    # -- connections ----------------------------------------------------------------------------

    def connect(self, client: str) -> Link | None:
        """A new stream from ``client`` to the master; None if it cannot be opened now (the
        client learns so after a connect delay of its own choosing)."""
        if not self.reachable(client):
            return None
        self._next_link += 1
        link = Link(self, client, self._next_link)
        self.links[link.link_id] = link
        return link

    def call(
        self,
        client: str,
        handle: Callable[[], tuple[str, str]],
        on_reply: Callable[[str, str], None],
    ) -> None:
        """A unary call: ``handle()`` runs at the master and answers (gRPC code name, message);
        ``on_reply`` runs at the client with that answer, or with UNAVAILABLE if the call or
        its reply was lost (after :data:`CALL_TIMEOUT`, or a connect delay)."""
        loop = self.loop
        if not self.reachable(client):
            loop.after(self.rng.uniform(0.01, 0.2), lambda: on_reply("UNAVAILABLE", "no master"))
            return
        epoch = self.master_epoch
        at = max(loop.now + self.latency(), self._call_last.get(client, 0.0))
        self._call_last[client] = at
        sent = loop.now

        def arrive() -> None:
            if self.master_epoch != epoch or client in self.isolated:
                loop.at(sent + CALL_TIMEOUT, lambda: on_reply("UNAVAILABLE", "call lost"))
                return
            code, message = handle()

            def back() -> None:
                if self.master_epoch != epoch or client in self.isolated:
                    loop.at(sent + CALL_TIMEOUT, lambda: on_reply("UNAVAILABLE", "reply lost"))
                else:
                    on_reply(code, message)

            loop.after(self.latency(), back)

        loop.at(at, arrive)

    # -- faults ---------------------------------------------------------------------------------

    def partition(self, client: str, duration: float) -> None:
        """Cut ``client`` off the master for ``duration`` seconds: its links break silently."""
        self.isolated[client] = max(self.isolated.get(client, 0.0), self.loop.now + duration)
        for link in list(self.links.values()):
            if link.client == client:
                link.cut(noisy=False)
        self.loop.after(duration, lambda: self._heal(client))

    def _heal(self, client: str) -> None:
        if self.isolated.get(client, 0.0) <= self.loop.now:
            self.isolated.pop(client, None)

    def heal_all(self) -> None:
        """End every partition now."""
        self.isolated.clear()

    def master_down(self) -> None:
        """The master process died: every link breaks noisily; nothing reaches a master."""
        self.master_up = False
        for link in list(self.links.values()):
            link.cut(noisy=True)
        self.master_epoch += 1
