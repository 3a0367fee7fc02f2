"""HTTP basic authentication as an ASGI middleware, shared by the master's and the agent's APIs.

Mesos authenticates both its master's and its agents' HTTP endpoints the same way
(``--authenticate_http_readonly``, ``--authenticate_http_readwrite``, ``--http_credentials``), so
one gate serves both: :class:`BasicAuthGate` reads a request's ``Authorization`` header (and,
under mutual TLS, the client certificate's subject that :mod:`protos.http_peer` leaves in the
scope), asks :func:`authenticate_request` for the principal, and answers a refusal itself, so a
refused request never reaches an endpoint and changes nothing:

* 401 with ``WWW-Authenticate: Basic`` (a browser then asks for credentials) and
  ``{"error": "authentication failed: ..."}`` for missing, malformed or wrong credentials;
* 403 with ``{"error": "<why>"}`` when a subclass's :meth:`BasicAuthGate.denied` says so.

The principal (or None: anonymous) is left in ``scope["emporion.principal"]`` for the endpoints'
own authorization (:func:`request_principal`). Which requests need credentials, what is denied
before the app runs and what the app runs with are the subclass's: the master's
(:mod:`master.auth.http`) and the agent's (:mod:`agent.runtime.http`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from protos.http_peer import CLIENT_CN_KEY
from protos.security import AuthenticationError, Authenticator

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "BasicAuthGate",
    "authenticate_request",
    "request_authorization",
    "request_principal",
    "respond_error",
]

PRINCIPAL_SCOPE_KEY = "emporion.principal"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def authenticate_request(
    authenticator: Authenticator, authorization: str | None, peer_cn: str | None, required: bool
) -> str | None:
    """The principal of a request (None: anonymous, allowed only when not ``required``).

    A request that sends credentials has them checked even when not required: wrong
    credentials are never taken as anonymous. Without credentials, the verified client
    certificate's subject (``peer_cn``, mutual TLS) stands as the principal.
    """
    if authorization is not None:
        return authenticator.authenticate(authorization)
    if peer_cn is not None:
        return peer_cn
    if required:
        raise AuthenticationError("no credentials given (authentication is required)")
    return None


def request_authorization(scope: Scope) -> str | None:
    """The request's ``Authorization`` header, if it has one."""
    for key, value in scope.get("headers") or ():
        if key == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None


def _peer_cn(scope: Scope) -> str | None:
    transport = scope.get("extensions", {}).get("tls", {})
    name = transport.get(CLIENT_CN_KEY) if isinstance(transport, dict) else None
    return name if isinstance(name, str) else None


def request_principal(scope: Scope) -> str | None:
    """The principal the gate authenticated for this request (None: anonymous)."""
    value = scope.get(PRINCIPAL_SCOPE_KEY)
    return value if isinstance(value, str) else None


class BasicAuthGate:
    """Authenticates every HTTP request of ``app`` (see the module docstring).

    Subclasses say which requests need credentials (:meth:`required`), may refuse one with 403
    before the app sees it (:meth:`denied`) and may run the app in a context of their own
    (:meth:`serve`).
    """

    def __init__(self, app: App, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    def required(self, method: str, path: str) -> bool:
        """Whether a ``method`` request of ``path`` must carry credentials."""
        raise NotImplementedError

    def denied(self, scope: Scope, principal: str | None) -> str | None:
        """Why ``principal`` may not make this request (403), None if it may."""
        return None

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, authorization: str | None
    ) -> None:
        """Run the app for an admitted request (``authorization``: the header it carried)."""
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = request_authorization(scope)
        try:
            principal = authenticate_request(
                self.authenticator,
                authorization,
                _peer_cn(scope),
                self.required(scope["method"], scope["path"]),
            )
        except AuthenticationError as error:
            challenge = [(b"www-authenticate", b'Basic realm="emporion"')]
            await respond_error(send, 401, f"authentication failed: {error}", challenge)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        if (why := self.denied(scope, principal)) is not None:
            await respond_error(send, 403, why)
            return
        await self.serve(scope, receive, send, authorization)


async def respond_error(
    send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``status`` with ``{"error": message}``."""
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
