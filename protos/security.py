"""Credentials, HTTP basic / gRPC metadata authentication and TLS settings shared by every process.

Emporion authenticates as Mesos's HTTP endpoints do: a principal and a secret sent as HTTP
basic authentication. Over gRPC the very same header travels as the ``authorization`` metadata
of every call, so one check (:meth:`Authenticator.authenticate`) serves both transports and no
extra round trip (Mesos's CRAM-MD5 exchange) is needed: under TLS the secret is never visible on
the wire, and without TLS it would not be protected by CRAM-MD5's challenge either, since every
later message is plaintext anyway.

Credentials files are Mesos's JSON (``{"credentials": [{"principal": ..., "secret": ...}]}``);
an agent's or a client's single credential is ``{"principal": ..., "secret": ...}`` or Mesos's
text form ``principal secret`` on one line. Secrets are compared with
:func:`hmac.compare_digest` and never appear in a message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

__all__ = [
    "AUTHORIZATION_KEY",
    "AuthenticationError",
    "Authenticator",
    "ClientCredential",
    "SecurityConfigError",
    "TlsConfig",
    "basic_header",
    "load_credential",
    "load_credentials",
    "metadata_interceptors",
    "parse_basic",
]

AUTHORIZATION_KEY = "authorization"
"""gRPC metadata key (and HTTP header) carrying ``Basic base64(principal:secret)``."""


class SecurityConfigError(ValueError):
    """A credentials, ACL or TLS file that cannot be used; the message names the file and why."""


class AuthenticationError(Exception):
    """A request whose credentials are missing, malformed or wrong (UNAUTHENTICATED / 401).

    The message never contains the secret.
    """


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """One principal and its secret, as a client (framework, agent, CLI) presents it."""

    principal: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.principal or ":" in self.principal:
            raise SecurityConfigError(
                f"a principal must be non-empty and contain no ':', got {self.principal!r}"
            )

    def header(self) -> str:
        """The ``authorization`` value: ``Basic base64(principal:secret)``."""
        return basic_header(self.principal, self.secret)


def basic_header(principal: str, secret: str) -> str:
    """HTTP basic authentication of ``principal`` with ``secret``."""
    token = base64.b64encode(f"{principal}:{secret}".encode()).decode("ascii")
    return f"Basic {token}"


def parse_basic(value: str) -> tuple[str, str]:
    """``(principal, secret)`` of a ``Basic`` authorization value.

    Raises AuthenticationError naming what is wrong (never echoing the value).
    """
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        raise AuthenticationError("the authorization is not HTTP basic ('Basic <base64>')")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("the basic authorization is not valid base64 UTF-8") from None
    principal, sep, secret = decoded.partition(":")
    if not sep or not principal:
        raise AuthenticationError("the basic authorization has no 'principal:secret'")
    return principal, secret


def _read_json(path: Path, what: str) -> object:
    try:
        text = path.read_text()
    except OSError as error:
        raise SecurityConfigError(f"{what} {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SecurityConfigError(f"{what} {path}: not JSON: {error}") from None


def _credential_from(entry: object, where: str) -> ClientCredential:
    if not isinstance(entry, Mapping):
        raise SecurityConfigError(f"{where}: expected an object with principal and secret")
    principal, secret = entry.get("principal"), entry.get("secret")
    if not isinstance(principal, str) or not principal:
        raise SecurityConfigError(f"{where}: 'principal' must be a non-empty string")
    if not isinstance(secret, str):
        raise SecurityConfigError(f"{where}: 'secret' of {principal!r} must be a string")
    try:
        return ClientCredential(principal, secret)
    except SecurityConfigError as error:
        raise SecurityConfigError(f"{where}: {error}") from None


def load_credentials(path: Path, flag: str = "--credentials") -> dict[str, str]:
    """A master's ``--credentials`` file (Mesos's JSON): principal -> secret (``flag`` names
    the file in errors: an agent's ``--http-credentials`` is the same JSON)."""
    document = _read_json(path, flag)
    entries = document.get("credentials") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise SecurityConfigError(
            f'{flag} {path}: expected {{"credentials": [{{"principal": ..., "secret": ...}}, ...]}}'
        )
    secrets: dict[str, str] = {}
    for index, entry in enumerate(entries):
        credential = _credential_from(entry, f"{flag} {path}: credentials[{index}]")
        if credential.principal in secrets:
            raise SecurityConfigError(
                f"{flag} {path}: principal {credential.principal!r} appears twice"
            )
        secrets[credential.principal] = credential.secret
    return secrets


def load_credential(path: Path, flag: str = "--credential") -> ClientCredential:
    """A single credential file: ``{"principal": ..., "secret": ...}`` or ``principal secret``."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SecurityConfigError(f"{flag} {path}: {error.strerror or error}") from None
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise SecurityConfigError(f"{flag} {path}: not JSON: {error}") from None
        return _credential_from(document, f"{flag} {path}")
    parts = text.split()
    if len(parts) != 2:
        raise SecurityConfigError(
            f"{flag} {path}: expected JSON or one line 'principal secret'"
            f" ({len(parts)} words found)"
        )
    try:
        return ClientCredential(parts[0], parts[1])
    except SecurityConfigError as error:
        raise SecurityConfigError(f"{flag} {path}: {error}") from None


class Authenticator:
    """Authenticator checks ``principal:secret`` against a credentials table in constant time."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._secrets = {p: s.encode() for p, s in secrets.items()}
        # Compared against when the principal is unknown, so that the time taken does not say
        # whether a principal exists.
        self._decoy = b"\0" * 32

    @property
    def principals(self) -> frozenset[str]:
        """Every known principal."""
        return frozenset(self._secrets)

    def authenticate(self, authorization: str | None) -> str:
        """The principal an ``authorization`` value proves; AuthenticationError otherwise."""
        if authorization is None:
            raise AuthenticationError("no credentials given (authentication is required)")
        principal, secret = parse_basic(authorization)
        expected = self._secrets.get(principal)
        matches = hmac.compare_digest(secret.encode(), expected or self._decoy)
        if expected is None or not matches:
            raise AuthenticationError(f"invalid credentials for principal {principal!r}")
        return principal


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS material of a server or client: PEM files.

    A server needs ``cert`` and ``key``; with ``ca`` it verifies client certificates signed by
    it, and with ``require_client_cert`` refuses clients without one (mutual TLS). A client
    needs ``ca`` to verify the server (the system's roots otherwise) and presents ``cert`` and
    ``key`` when given.
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    require_client_cert: bool = False

    def _read(self, path: Path | None, flag: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as error:
            raise SecurityConfigError(f"{flag} {path}: {error.strerror or error}") from None

    def check_server(self) -> None:
        """Raise SecurityConfigError if a server cannot use these files."""
        if (self.cert is None) != (self.key is None):
            raise SecurityConfigError("--tls-cert and --tls-key must be given together")
        if self.cert is None:
            raise SecurityConfigError("TLS needs --tls-cert and --tls-key")
        if self.require_client_cert and self.ca is None:
            raise SecurityConfigError(
                "--tls-require-client-cert needs --tls-ca (to verify client certificates)"
            )
        self.server_ssl_context()  # Loads every file: bad PEM is refused now, by name.

    def server_credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials."""
        key, cert = self._read(self.key, "--tls-key"), self._read(self.cert, "--tls-cert")
        assert key is not None
        assert cert is not None
        return grpc.ssl_server_credentials(
            [(key, cert)],
            root_certificates=self._read(self.ca, "--tls-ca"),
            require_client_auth=self.require_client_cert,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials of a client."""
        return grpc.ssl_channel_credentials(
            root_certificates=self._read(self.ca, "--tls-ca"),
            private_key=self._read(self.key, "--tls-key"),
            certificate_chain=self._read(self.cert, "--tls-cert"),
        )

    def server_ssl_context(self) -> ssl.SSLContext:
        """The ``ssl`` context of an HTTP server."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            assert self.cert is not None
            assert self.key is not None
            context.load_cert_chain(str(self.cert), str(self.key))
            if self.ca is not None:
                context.load_verify_locations(str(self.ca))
                context.verify_mode = (
                    ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
                )
        except (OSError, ssl.SSLError) as error:
            raise SecurityConfigError(f"TLS files {self.cert}, {self.key}: {error}") from None
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """The ``ssl`` context of an HTTP client (httpx ``verify=``)."""
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca) if self.ca is not None else None
            )
            if self.cert is not None and self.key is not None:
                context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as error:
            raise SecurityConfigError(f"TLS files: {error}") from None
        return context


def peer_common_name(context: aio.ServicerContext[object, object]) -> str | None:
    """The subject CN of a verified client certificate of a gRPC call, if any."""
    names = list(context.auth_context().get("x509_common_name") or ())
    if not names:
        return None
    value = names[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def call_authorization(context: aio.ServicerContext[object, object]) -> str | None:
    """The ``authorization`` metadata of a gRPC call."""
    for key, value in context.invocation_metadata() or ():
        if key == AUTHORIZATION_KEY:
            return value if isinstance(value, str) else value.decode()
    return None


def _with_metadata(
    details: aio.ClientCallDetails, extra: Sequence[tuple[str, str]]
) -> aio.ClientCallDetails:
    metadata = aio.Metadata(*(details.metadata or ()), *extra)
    return aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnary(aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, extra: Sequence[tuple[str, str]]) -> None:
        self._extra = extra

    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(_with_metadata(details, self._extra), request)


class _UnaryStream(aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, extra: Sequence[tuple[str, str]]) -> None:
        self._extra = extra

    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(_with_metadata(details, self._extra), request)


class _StreamStream(aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, extra: Sequence[tuple[str, str]]) -> None:
        self._extra = extra

    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(_with_metadata(details, self._extra), request_iterator)


def metadata_interceptors(credential: ClientCredential | None) -> list[Any]:
    """Client interceptors that send ``credential`` with every call (none without one)."""
    if credential is None:
        return []
    extra = ((AUTHORIZATION_KEY, credential.header()),)
    interceptors: list[Any] = [_UnaryUnary(extra), _UnaryStream(extra), _StreamStream(extra)]
    return interceptors


def open_aio_channel(
    address: str,
    options: Sequence[tuple[str, object]],
    *,
    tls: TlsConfig | None = None,
    credential: ClientCredential | None = None,
) -> aio.Channel:
    """An asyncio gRPC channel to ``address``: TLS when ``tls`` is given, ``credential`` sent
    with every call."""
    interceptors = metadata_interceptors(credential) or None
    if tls is None:
        return aio.insecure_channel(address, options=options, interceptors=interceptors)
    return aio.secure_channel(
        address, tls.channel_credentials(), options=options, interceptors=interceptors
    )
