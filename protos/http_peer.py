"""Which verified client certificate each HTTP connection presented, told to the ASGI app.

Under mutual TLS the subject of a client's certificate may stand as its principal, as it does on
the gRPC ports (:func:`protos.security.peer_common_name`). uvicorn does not put the TLS peer in
the ASGI scope, so :func:`peer_aware_protocol` wraps uvicorn's HTTP protocol class: when a
connection is made it reads the peer certificate once from the TLS transport and, for every
request on that connection, sets ``scope["extensions"]["tls"]["client_cn"]`` (the subject's
common name) before the app runs. The certificate is the one Python's ``ssl`` verified against
the server's CA (``getpeercert()`` gives nothing for an unverified one), so a name appears only
for a certificate the cluster's CA signed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["CLIENT_CN_KEY", "peer_aware_protocol", "subject_common_name"]

CLIENT_CN_KEY = "client_cn"
"""The key of the client's common name in ``scope["extensions"]["tls"]``."""

_Scope = MutableMapping[str, Any]
_App = Callable[[_Scope, Any, Any], Awaitable[None]]


def subject_common_name(certificate: object) -> str | None:
    """The subject's commonName of a certificate as ``SSLObject.getpeercert()`` gives it."""
    if not isinstance(certificate, dict):
        return None
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and isinstance(value, str) and value:
                return value
    return None


def _with_peer(app: _App, common_name: str) -> _App:
    async def app_with_peer(scope: _Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            extensions = scope.setdefault("extensions", {})
            extensions.setdefault("tls", {})[CLIENT_CN_KEY] = common_name
        await app(scope, receive, send)

    return app_with_peer


def peer_aware_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (httptools when installed, else h11) with the peer's name.

    Pass it as ``uvicorn.Config(http=...)``; on a plain (non-TLS) connection it changes nothing.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class PeerAwareProtocol(base):  # type: ignore[misc]
        app: _App

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            name = subject_common_name(ssl_object.getpeercert()) if ssl_object else None
            if name is not None:
                self.app = _with_peer(self.app, name)

    return PeerAwareProtocol
