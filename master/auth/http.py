"""HTTP basic authentication of the master's HTTP API, as an ASGI middleware.

Mesos's realms: ``--authenticate-http-readonly`` covers GET/HEAD endpoints (state, metrics, the
UI's pages), ``--authenticate-http-readwrite`` every other method (the operator API
``POST /api/v1``, teardown, quota, weights), ``--authenticate-frameworks`` the scheduler API
``/api/v1/scheduler``. ``/health`` stays open (load balancers probe it). The principal, or None,
is left in ``scope["emporion.principal"]`` for the endpoints' authorization. A refusal is 401
with ``WWW-Authenticate: Basic`` (so a browser asks for credentials) and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from master.auth import MasterSecurity
from protos.security import AuthenticationError

__all__ = ["PRINCIPAL_SCOPE_KEY", "BasicAuthMiddleware", "request_principal"]

PRINCIPAL_SCOPE_KEY = "emporion.principal"

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_App = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

_OPEN_PATHS = frozenset({"/health", "/master/health"})


def request_principal(scope: _Scope) -> str | None:
    """The principal the middleware authenticated for this request (None: anonymous)."""
    value = scope.get(PRINCIPAL_SCOPE_KEY)
    return value if isinstance(value, str) else None


class BasicAuthMiddleware:
    """Authenticates each HTTP request of ``app`` (see the module docstring)."""

    def __init__(self, app: _App, security: MasterSecurity) -> None:
        self.app = app
        self.security = security

    def _required(self, method: str, path: str) -> bool:
        flags = self.security.flags
        if path in _OPEN_PATHS:
            return False
        if path.startswith("/api/v1/scheduler"):
            return flags.frameworks
        if method in ("GET", "HEAD"):
            return flags.http_readonly
        return flags.http_readwrite

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = None
        for key, value in scope.get("headers") or ():
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        peer = None
        transport = scope.get("extensions", {}).get("tls", {})
        if isinstance(transport, dict):
            peer = transport.get("client_cn")
        try:
            principal = self.security.authenticate(
                authorization, peer, self._required(scope["method"], scope["path"])
            )
        except AuthenticationError as error:
            await _unauthorized(send, str(error))
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)


async def _unauthorized(send: _Send, message: str) -> None:
    body = json.dumps({"error": f"authentication failed: {message}"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="emporion"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
