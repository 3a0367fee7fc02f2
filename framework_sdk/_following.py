"""LeaderWatch: what a SchedulerClient hears about the leader besides its own subscription.

Two sources, merged into one stream of :class:`LeaderNews`:

* its master detector, when it can follow the leader
  (:class:`~framework_sdk.detector.LeaderFollowingDetector`, the ``zk://`` one): news is the
  detector naming another leader than it last did, or none;
* masters refusing calls with ``UNAVAILABLE`` naming the leader (``emporion-leader``): news is
  that leader, which also serves as the address of the next attempt (the *hint*).

The client races its subscription, and its backoff sleeps, against :meth:`LeaderWatch.next`, and
asks its sans-I/O session what each piece of news means
(:meth:`~framework_sdk.session.SchedulerSession.leader_changed`). News is compared with the
detector's previous answer, not with the master the client is at: when that master came from a
hint and the detector disagrees, the client waits for the detector to *change* before leaving,
so two views that differ cannot make it bounce between masters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from framework_sdk.detector import LeaderFollowingDetector, MasterDetector

__all__ = ["LeaderNews", "LeaderWatch"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LeaderNews:
    """``named_by`` says ``leader`` leads now (None: no master does); ``hint``: a refusal."""

    leader: str | None
    named_by: str
    hint: bool = False


class LeaderWatch:
    """LeaderWatch follows the leader for one client (see the module docstring)."""

    def __init__(self, detector: MasterDetector) -> None:
        self._detector = detector
        self._follower = detector if isinstance(detector, LeaderFollowingDetector) else None
        self.detected: str | None = None
        """The detector's latest answer the client has taken into account."""
        self.hint: str | None = None
        """A leader named by a refusal: the address of the next attempt (once)."""
        self._hint_by = ""
        self._hinted = asyncio.Event()  # A refused call named a leader not yet acted upon.

    @property
    def follows(self) -> bool:
        """Whether the detector reports leader changes (else only refusals are news)."""
        return self._follower is not None

    async def detect(self) -> str:
        """Ask the detector for the leader (waits while none is known)."""
        self.detected = await self._detector.detect()
        return self.detected

    def take_hint(self) -> str | None:
        """The hint for the attempt about to start (then forgotten), or None."""
        hint, self.hint = self.hint, None
        self._hinted.clear()
        return hint

    def named_by_refusal(self, leader: str, named_by: str) -> None:
        """A master refused a call naming ``leader``: news, and the next attempt's address."""
        self.hint, self._hint_by = leader, named_by
        self._hinted.set()

    async def next(self) -> LeaderNews:
        """Wait for news: a refusal naming a leader, or the detector changing its answer.

        Nothing is consumed until :meth:`taken` is called, so news lost to a cancelled wait is
        found again by the next one.
        """
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._hinted.wait())}
        changed: asyncio.Future[str | None] | None = None
        if self._follower is not None:
            changed = asyncio.ensure_future(self._detector_change(self._follower))
            waits.add(changed)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if self._hinted.is_set():
            return LeaderNews(self.hint, self._hint_by, hint=True)
        assert changed is not None
        return LeaderNews(changed.result(), "the master detector")

    async def _detector_change(self, follower: LeaderFollowingDetector) -> str | None:
        if self.detected is None:  # None known: the next news is one being elected.
            return await follower.detect()
        return await follower.wait_change(self.detected)

    def taken(self, news: LeaderNews, *, acted: bool) -> None:
        """``news`` was taken into account; ``acted``: the client left its master for it."""
        if news.hint:
            self._hinted.clear()
            if not acted:  # It names the master we are at: nothing to follow next time.
                self.hint = None
        else:
            self.detected = news.leader
            if acted:  # Newer than a hint left by an earlier refusal of SUBSCRIBE.
                self.hint = None

    async def race(self, work: asyncio.Future[_T], on_news: Callable[[LeaderNews], bool]) -> bool:
        """Wait until ``work`` is done, or until ``on_news`` answers True for a piece of news
        (then ``work`` is cancelled); whether news won. ``work`` has ended either way."""
        try:
            while not work.done():
                news = asyncio.ensure_future(self.next())
                waits: set[asyncio.Future[Any]] = {work, news}
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    news.cancel()
                    # (gather: a cancellation of this task still propagates.)
                    await asyncio.gather(news, return_exceptions=True)
                if work.done():  # Its outcome first; news not taken is found again later.
                    return False
                if on_news(news.result()):
                    return True
            return False
        finally:
            if not work.done():
                work.cancel()
            await asyncio.gather(work, return_exceptions=True)
