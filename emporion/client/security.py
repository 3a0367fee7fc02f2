"""TLS and credentials of the command line: the SDK's variables, so one setting serves both.

``emporion run`` registers its framework through ``framework_sdk``, which reads
``EMPORION_SDK_TLS_CA`` / ``_TLS_CERT`` / ``_TLS_KEY`` / ``EMPORION_SDK_TLS=1`` and
``EMPORION_SDK_PRINCIPAL`` with ``EMPORION_SDK_SECRET`` (or ``_SECRET_FILE``)
(:mod:`framework_sdk.auth`). The commands read the same variables for everything else they ask
of a master: TLS on the discovery call and ``https`` with that CA (and client certificate) for
the HTTP API; the principal and secret as HTTP basic authentication, as a master started with
``--authenticate-http-readonly``/``-readwrite`` asks. A setting that cannot work (a key without
its certificate, a missing file) is a UsageError naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emporion.client.errors import UsageError
from protos.security import ClientCredential, SecurityConfigError, TlsConfig

__all__ = ["ClientSecurity"]


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """ClientSecurity: how to reach a master that uses TLS or asks for credentials."""

    tls: TlsConfig | None = None
    credential: ClientCredential | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSecurity:
        """The settings the ``EMPORION_SDK_*`` variables describe (none: plain, anonymous)."""
        from framework_sdk.auth import credential_from_env, tls_from_env

        env = os.environ if environ is None else environ
        try:
            return cls(tls_from_env(env), credential_from_env(env))
        except SecurityConfigError as error:
            raise UsageError(str(error)) from None

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.tls is not None else "http"

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments for an httpx client: TLS verification and basic authentication."""
        options: dict[str, Any] = {"trust_env": False}
        if self.tls is not None:
            try:
                options["verify"] = self.tls.client_ssl_context()
            except SecurityConfigError as error:
                raise UsageError(str(error)) from None
        if self.credential is not None:
            options["auth"] = (self.credential.principal, self.credential.secret)
        return options

    def grpc_channel(self, address: str) -> Any:
        """A gRPC channel to ``address``: TLS when configured, carrying the credential."""
        import grpc

        if self.tls is None:
            return grpc.insecure_channel(address)
        try:
            credentials = self.tls.channel_credentials()
        except SecurityConfigError as error:
            raise UsageError(str(error)) from None
        return grpc.secure_channel(address, credentials)
