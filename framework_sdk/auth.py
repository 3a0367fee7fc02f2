"""A scheduler client's credential and TLS settings (``credential=``, ``tls=``, or the environment).

As Mesos's driver, a framework authenticates with a ``Credential`` (principal and secret); here
it travels as the ``authorization`` metadata of every gRPC call (:mod:`protos.security`), so a
reconnection or a failover needs no separate handshake. TLS is used when ``tls=`` is given, or
when the environment names it:

* ``EMPORION_SDK_TLS_CA``: CA bundle the master's certificate is verified against (TLS on);
* ``EMPORION_SDK_TLS_CERT`` / ``EMPORION_SDK_TLS_KEY``: the client certificate (mutual TLS);
* ``EMPORION_SDK_TLS=1``: TLS verified against the system's roots;
* ``EMPORION_SDK_PRINCIPAL`` with ``EMPORION_SDK_SECRET`` (or ``EMPORION_SDK_SECRET_FILE``):
  the credential, when none is passed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from protos.security import ClientCredential, SecurityConfigError, TlsConfig
from protos.v1 import mesos_pb2

__all__ = [
    "ClientCredential",
    "TlsConfig",
    "credential_from_env",
    "resolve_credential",
    "tls_from_env",
]

_PREFIX = "EMPORION_SDK_"


def tls_from_env(environ: Mapping[str, str] | None = None) -> TlsConfig | None:
    """The TLS settings ``EMPORION_SDK_TLS_*`` describe (None: plaintext)."""
    env = os.environ if environ is None else environ

    def path(name: str) -> Path | None:
        value = env.get(_PREFIX + name, "").strip()
        return Path(value) if value else None

    ca, cert, key = path("TLS_CA"), path("TLS_CERT"), path("TLS_KEY")
    enabled = env.get(_PREFIX + "TLS", "").strip().lower() in ("1", "true", "yes", "on")
    if (cert is None) != (key is None):
        raise SecurityConfigError(f"{_PREFIX}TLS_CERT and {_PREFIX}TLS_KEY: give both, or neither")
    if ca is None and cert is None and not enabled:
        return None
    return TlsConfig(cert=cert, key=key, ca=ca)


def credential_from_env(environ: Mapping[str, str] | None = None) -> ClientCredential | None:
    """The credential ``EMPORION_SDK_PRINCIPAL`` and its secret name (None: none)."""
    env = os.environ if environ is None else environ
    principal = env.get(_PREFIX + "PRINCIPAL")
    if not principal:
        return None
    secret = env.get(_PREFIX + "SECRET")
    secret_file = env.get(_PREFIX + "SECRET_FILE")
    if secret is None and secret_file:
        try:
            secret = Path(secret_file).read_text().strip()
        except OSError as error:
            raise SecurityConfigError(
                f"{_PREFIX}SECRET_FILE {secret_file}: {error.strerror or error}"
            ) from None
    if secret is None:
        raise SecurityConfigError(
            f"{_PREFIX}PRINCIPAL is set but neither {_PREFIX}SECRET nor {_PREFIX}SECRET_FILE"
        )
    return ClientCredential(principal, secret)


def resolve_credential(
    credential: mesos_pb2.Credential | ClientCredential | None,
) -> ClientCredential | None:
    """A ``messages.Credential`` (Mesos's driver argument) or a ClientCredential, as one."""
    if credential is None or isinstance(credential, ClientCredential):
        return credential
    if isinstance(credential, mesos_pb2.Credential):
        if not credential.principal:
            raise ValueError("credential.principal is required")
        return ClientCredential(credential.principal, credential.secret)
    raise TypeError(f"credential must be a messages.Credential, not {type(credential).__name__}")
