"""MasterHttpServer: uvicorn serving an app inside the master's own event loop.

The master binds the socket itself, so ``--http-port 0`` works and the chosen port is known
(and published in the candidate znode) before anything is served. uvicorn's signal handlers
are left out: the master handles its own signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Generator
from typing import Any

import uvicorn

from protos.http_peer import peer_aware_protocol
from protos.security import TlsConfig

__all__ = ["MasterHttpServer"]


def _tls_options(tls: TlsConfig | None) -> dict[str, Any]:
    """uvicorn's TLS settings for ``tls`` (none: plain HTTP)."""
    if tls is None:
        return {}
    return {
        "ssl_certfile": str(tls.cert),
        "ssl_keyfile": str(tls.key),
        "ssl_ca_certs": str(tls.ca) if tls.ca is not None else None,
        "ssl_cert_reqs": (
            ssl.CERT_REQUIRED
            if tls.require_client_cert
            else ssl.CERT_OPTIONAL
            if tls.ca is not None
            else ssl.CERT_NONE
        ),
        # A verified client certificate's subject may stand as the principal (master.auth.http).
        "http": peer_aware_protocol(),
    }


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class MasterHttpServer:
    """MasterHttpServer serves ``app`` on ``host:port`` (bound at construction) until stopped;
    requests under way at :meth:`stop` get ``grace`` seconds.

    Raises OSError at construction if the address cannot be bound.
    """

    def __init__(
        self,
        host: str,
        port: int,
        app: Any,
        *,
        grace: int = 1,
        tls: TlsConfig | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(128)
        except OSError as error:
            self._socket.close()
            raise OSError(f"cannot bind the HTTP API to {host}:{port}: {error}") from error
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]
        """The bound port."""
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=grace,
            **_tls_options(tls),
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin serving in the background (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[self._socket]), name="master-http"
        )

    async def stop(self) -> None:
        """Stop serving (requests under way get the grace period) and close the socket."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._socket.close()
