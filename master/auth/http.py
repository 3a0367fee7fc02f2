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
import re
import ssl
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextvars import ContextVar
from typing import Any

from master.auth import MasterSecurity, PermissionDeniedError
from master.core import Master
from protos.acls import Action
from protos.security import AuthenticationError, TlsConfig

__all__ = ["PRINCIPAL_SCOPE_KEY", "BasicAuthMiddleware", "request_principal"]

PRINCIPAL_SCOPE_KEY = "emporion.principal"

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_App = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

AGENT_SCHEME: ContextVar[tuple[str, ssl.SSLContext | bool]] = ContextVar(
    "emporion_agent_scheme", default=("http", True)
)
"""How the master's sandbox proxy reaches agents while serving this request: ``https`` with the
cluster CA when the master serves TLS (a TLS cluster's agents serve HTTPS), else ``http``."""

CURRENT_PRINCIPAL: ContextVar[str | None] = ContextVar("emporion_principal", default=None)
"""The principal of the HTTP request being served (set by the middleware for the request's
task, so the operator API and the UI's in-process calls see it without passing it along)."""

_SANDBOX_PATH = re.compile(r"^/ui/sandbox/([^/]+)/")

_OPEN_PATHS = frozenset({"/health", "/master/health"})


def request_principal(scope: _Scope) -> str | None:
    """The principal the middleware authenticated for this request (None: anonymous)."""
    value = scope.get(PRINCIPAL_SCOPE_KEY)
    return value if isinstance(value, str) else None


class BasicAuthMiddleware:
    """Authenticates each HTTP request of ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: _App,
        security: MasterSecurity,
        leading: Callable[[], Master | None] = lambda: None,
    ) -> None:
        self.app = app
        self.security = security
        self._leading = leading
        tls = security.tls
        self._agents: tuple[str, ssl.SSLContext | bool] = (
            # Its own certificate as the client's: agents may serve only the cluster's masters.
            ("https", TlsConfig(tls.cert, tls.key, tls.ca).client_ssl_context())
            if tls is not None
            else ("http", True)
        )

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
        if (denied := self._sandbox_denied(scope["path"], principal)) is not None:
            await _respond(send, 403, denied, ())
            return
        token = CURRENT_PRINCIPAL.set(principal)
        agents = AGENT_SCHEME.set(self._agents)
        try:
            await self.app(scope, receive, send)
        finally:
            AGENT_SCHEME.reset(agents)
            CURRENT_PRINCIPAL.reset(token)

    def _sandbox_denied(self, path: str, principal: str | None) -> str | None:
        """Why the sandbox proxy may not serve ``path`` to ``principal`` (``access_sandboxes``
        on the framework's user), None if it may."""
        match = _SANDBOX_PATH.match(path)
        master = self._leading() if match is not None else None
        if match is None or master is None:
            return None
        fw = master.framework(match.group(1))
        user = fw.info.user if fw is not None else None
        try:
            self.security.authorize(Action.ACCESS_SANDBOXES, principal, user)
        except PermissionDeniedError as denied:
            return str(denied)
        return None


async def _unauthorized(send: _Send, message: str) -> None:
    challenge = [(b"www-authenticate", b'Basic realm="emporion"')]
    await _respond(send, 401, f"authentication failed: {message}", challenge)


async def _respond(
    send: _Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
