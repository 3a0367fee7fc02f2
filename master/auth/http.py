"""HTTP basic authentication of the master's HTTP API, as an ASGI middleware.

Mesos's realms: ``--authenticate-http-readonly`` covers GET/HEAD endpoints (state, metrics, the
UI's pages), ``--authenticate-http-readwrite`` every other method (the operator API
``POST /api/v1``, teardown, quota, weights), ``--authenticate-frameworks`` the scheduler API
``/api/v1/scheduler``. ``/health`` stays open (load balancers probe it). The principal, or None,
is left in ``scope["emporion.principal"]`` for the endpoints' authorization. A refusal is 401
with ``WWW-Authenticate: Basic`` (so a browser asks for credentials) and changes nothing. The
gate itself is :class:`protos.http_auth.BasicAuthGate`, which the agent's HTTP API uses too.

The UI's sandbox proxy forwards the request's ``Authorization`` header to the agent
(:func:`agent_headers`), so an agent that authenticates its HTTP API authenticates and
authorizes the person asking, with the same credentials.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from contextvars import ContextVar

from master.auth import MasterSecurity, PermissionDeniedError
from master.core import Master
from protos.acls import Action
from protos.http_auth import (
    PRINCIPAL_SCOPE_KEY,
    App,
    BasicAuthGate,
    Receive,
    Scope,
    Send,
    request_principal,
)
from protos.security import TlsConfig

__all__ = [
    "AGENT_AUTHORIZATION",
    "PRINCIPAL_SCOPE_KEY",
    "BasicAuthMiddleware",
    "agent_headers",
    "request_principal",
]

AGENT_SCHEME: ContextVar[tuple[str, ssl.SSLContext | bool]] = ContextVar(
    "emporion_agent_scheme", default=("http", True)
)
"""How the master's sandbox proxy reaches agents while serving this request: ``https`` with the
cluster CA when the master serves TLS (a TLS cluster's agents serve HTTPS), else ``http``."""

AGENT_AUTHORIZATION: ContextVar[str | None] = ContextVar(
    "emporion_agent_authorization", default=None
)
"""The ``Authorization`` header of the request being served, which the sandbox proxy forwards to
the agent: an agent with ``--authenticate-http-readonly`` then authenticates, and authorizes
(``access_sandboxes``), the person asking, not the master."""

CURRENT_PRINCIPAL: ContextVar[str | None] = ContextVar("emporion_principal", default=None)
"""The principal of the HTTP request being served (set by the middleware for the request's
task, so the operator API and the UI's in-process calls see it without passing it along)."""

_SANDBOX_PATH = re.compile(r"^/ui/sandbox/([^/]+)/")

_OPEN_PATHS = frozenset({"/health", "/master/health"})


def agent_headers() -> dict[str, str]:
    """Headers of the sandbox proxy's request to an agent: the user's ``Authorization``."""
    authorization = AGENT_AUTHORIZATION.get()
    return {"Authorization": authorization} if authorization is not None else {}


class BasicAuthMiddleware(BasicAuthGate):
    """Authenticates each HTTP request of ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: App,
        security: MasterSecurity,
        leading: Callable[[], Master | None] = lambda: None,
    ) -> None:
        # The app's own entry, when it has one: the scheduler API's fast path
        # (master.http.scheduler_api.fast), which passes on to the app what it does not serve.
        entry = getattr(getattr(app, "state", None), "scheduler_fast_path", None)
        super().__init__(entry if entry is not None else app, security.authenticator)
        self.security = security
        self._leading = leading
        tls = security.tls
        self._agents: tuple[str, ssl.SSLContext | bool] = (
            # Its own certificate as the client's: agents may serve only the cluster's masters.
            ("https", TlsConfig(tls.cert, tls.key, tls.ca).client_ssl_context())
            if tls is not None
            else ("http", True)
        )

    def required(self, method: str, path: str) -> bool:
        flags = self.security.flags
        if path in _OPEN_PATHS:
            return False
        if path.startswith("/api/v1/scheduler"):
            return flags.frameworks
        if method in ("GET", "HEAD"):
            return flags.http_readonly
        return flags.http_readwrite

    def denied(self, scope: Scope, principal: str | None) -> str | None:
        """Why the sandbox proxy may not serve this path to ``principal`` (``access_sandboxes``
        on the framework's user), None if it may."""
        match = _SANDBOX_PATH.match(scope["path"])
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

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, authorization: str | None
    ) -> None:
        token = CURRENT_PRINCIPAL.set(request_principal(scope))
        agents = AGENT_SCHEME.set(self._agents)
        forwarded = AGENT_AUTHORIZATION.set(authorization)
        try:
            await self.app(scope, receive, send)
        finally:
            AGENT_AUTHORIZATION.reset(forwarded)
            AGENT_SCHEME.reset(agents)
            CURRENT_PRINCIPAL.reset(token)
