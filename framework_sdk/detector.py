"""Master detection: where is the leading master? A seam with a static implementation.

A scheduler client asks its :class:`MasterDetector` for an address before every (re)subscription.
``"host:port"`` gives a :class:`StaticMasterDetector`, ``"zk://h1:2181,h2:2181/path"`` a
:class:`~framework_sdk.zk_detector.ZooKeeperMasterDetector` (following the leading master).
Other schemes are plugged in with :func:`register_scheme`, so the client and the driver never
change: they only call :func:`create_detector`.

A detector that can also tell when the leader moves (:class:`LeaderFollowingDetector`: it has
``wait_change``, as the ``zk://`` one does) is followed: the client leaves a master as soon as
the detector names another leader (or none), instead of waiting for that master's stream to
break, and cuts its reconnect backoff short when the leader changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = [
    "LeaderFollowingDetector",
    "MasterDetector",
    "StaticMasterDetector",
    "create_detector",
    "parse_address",
    "register_scheme",
]


@runtime_checkable
class MasterDetector(Protocol):
    """MasterDetector finds the leading master; the client asks it before each subscription."""

    async def detect(self) -> str:
        """The leading master's ``"host:port"``; waits while no leader is known."""
        ...

    async def close(self) -> None:
        """Release whatever the detector holds (sessions, watches). Idempotent."""
        ...


@runtime_checkable
class LeaderFollowingDetector(MasterDetector, Protocol):
    """A MasterDetector that can also wait for the leader to move (the ``zk://`` one)."""

    async def wait_change(self, address: str) -> str | None:
        """Wait until the leader is no longer the master at ``address`` (at once if it is
        not now); the new leader's ``"host:port"``, or None while no master leads."""
        ...


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``) into host and port; ValueError if malformed."""
    if not isinstance(address, str):
        raise TypeError(f"master address must be a str, not {type(address).__name__}")
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"master address {address!r} is not 'host:port'")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"master address {address!r} has a malformed [IPv6] host")
    elif ":" in host:
        raise ValueError(f"master address {address!r}: write an IPv6 host in brackets, [::1]:5050")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"master address {address!r} has no valid port (1-65535)")
    return host, int(port_text)


class StaticMasterDetector:
    """StaticMasterDetector always answers the one address it was given (a standalone master)."""

    def __init__(self, address: str) -> None:
        host, port = parse_address(address)
        self.address = f"{host}:{port}"

    async def detect(self) -> str:
        """The configured address, at once."""
        return self.address

    async def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"StaticMasterDetector({self.address!r})"


DetectorFactory = Callable[[str], MasterDetector]
_SCHEMES: dict[str, DetectorFactory] = {}


def register_scheme(scheme: str, factory: DetectorFactory) -> None:
    """Make ``create_detector("<scheme>://...")`` call ``factory(url)`` (e.g. ``"zk"``)."""
    if not scheme.isidentifier():
        raise ValueError(f"detector scheme {scheme!r} must be a plain word such as 'zk'")
    _SCHEMES[scheme] = factory


def create_detector(master: str | MasterDetector) -> MasterDetector:
    """The detector for ``"host:port"``, for ``"<scheme>://..."``, or the detector given."""
    if isinstance(master, MasterDetector):
        return master
    if not isinstance(master, str):
        raise TypeError(f"master must be 'host:port' or a MasterDetector, not {master!r}")
    scheme, sep, _ = master.partition("://")
    if sep:
        factory = _SCHEMES.get(scheme)
        if factory is None:
            known = ", ".join(sorted(_SCHEMES)) or "none yet"
            raise ValueError(
                f"master {master!r}: no detector for scheme {scheme!r} (registered: {known});"
                " give the master as 'host:port'"
            )
        return factory(master)
    return StaticMasterDetector(master)


def _zk_detector(url: str) -> MasterDetector:
    # Imported on first use: kazoo is loaded only by programs that follow a zk:// master.
    from framework_sdk.zk_detector import create

    return create(url)


register_scheme("zk", _zk_detector)
