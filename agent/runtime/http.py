"""The agent's HTTP API (``--port``): the sandbox files API, ``/health``, ``/state`` and
``/metrics`` (Prometheus, :mod:`agent.runtime.prometheus`).

Authentication and authorization are Mesos's agent flags (:class:`AgentHttpSecurity`):
``--authenticate-http-readonly`` (GET and HEAD: files, state, metrics) and
``--authenticate-http-readwrite`` (every other method) ask for HTTP basic authentication against
``--http-credentials``, through the gate the master uses too (:mod:`protos.http_auth`: 401 with
``WWW-Authenticate: Basic``). ``/health`` stays open, and so does Mesos's executor API
``/api/v1/executor``: it serves the agent's own executors, which Mesos authenticates apart
(``--authenticate_http_executors``, with tokens the agent issues; not built here). With
``--acls`` the file API serves a sandbox only to principals that ``access_sandboxes`` allows on
the framework's user (403 naming the principal and the action).

Served in the agent's own event loop by uvicorn on a socket the agent binds itself (so port 0
works and the chosen port is known before serving). Sandboxes are exposed one run each, named
``frameworks/<F>/executors/<E>/runs/<C>`` (and ``.../runs/latest``), so a link in one sandbox
cannot reach into another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from agent.config import AgentConfig
from agent.files import create_files_router
from protos.acls import Acls, Action, refusal
from protos.http_auth import App, BasicAuthGate
from protos.mesos_json import answer
from protos.security import Authenticator, load_credentials

__all__ = ["AgentHttpSecurity", "AgentHttpServer", "sandbox_roots"]

_OPEN_PATHS = frozenset({"/health"})
_EXECUTOR_API = "/api/v1/executor"


class AgentHttpSecurity:
    """What the agent's HTTP API checks (module docstring); files read when built.

    ``framework_user`` gives the user of a framework the agent runs or has recently run
    (:meth:`agent.core.state.AgentState.framework_user`; None: unknown, say run before the agent
    restarted); the sandboxes of such a framework are served only by rules whose ``users`` are
    ANY.
    """

    def __init__(
        self,
        *,
        readonly: bool,
        readwrite: bool,
        secrets: Mapping[str, str],
        acls: Acls | None,
        framework_user: Callable[[str], str | None],
    ) -> None:
        self.readonly = readonly
        self.readwrite = readwrite
        self.authenticator = Authenticator(secrets)
        self.acls = acls
        self._framework_user = framework_user

    @classmethod
    def from_config(
        cls, config: AgentConfig, framework_user: Callable[[str], str | None]
    ) -> AgentHttpSecurity | None:
        """The checks ``config`` asks for; None when it asks for none (SecurityConfigError
        naming the file if one cannot be read; the config has read them once already)."""
        if not (
            config.authenticate_http_readonly
            or config.authenticate_http_readwrite
            or config.http_credentials is not None
            or config.acls is not None
        ):
            return None
        credentials = config.http_credentials
        return cls(
            readonly=config.authenticate_http_readonly,
            readwrite=config.authenticate_http_readwrite,
            secrets=load_credentials(credentials, "--http-credentials") if credentials else {},
            acls=Acls.load(config.acls) if config.acls is not None else None,
            framework_user=framework_user,
        )

    def required(self, method: str, path: str) -> bool:
        """Whether a request must carry credentials."""
        if path in _OPEN_PATHS or path == _EXECUTOR_API or path.startswith(_EXECUTOR_API + "/"):
            return False
        return self.readonly if method in ("GET", "HEAD") else self.readwrite

    def sandbox_denied(self, principal: str | None, sandbox: str) -> str | None:
        """Why ``principal`` may not read the sandbox named ``sandbox``
        (``frameworks/F/executors/E/runs/C``): ``access_sandboxes`` on F's user; None if it may."""
        if self.acls is None:
            return None
        parts = sandbox.split("/")
        framework_id = parts[1] if len(parts) > 1 and parts[0] == "frameworks" else None
        user = self._framework_user(framework_id) if framework_id is not None else None
        if self.acls.allows(Action.ACCESS_SANDBOXES, principal, user):
            return None
        if user is None:
            why = (
                f"framework {framework_id} is not known to this agent (not run since it"
                " started), so its user is unknown, and no rule for ANY user allows it"
            )
        else:
            why = f"refused by the ACLs on {user!r} (the user of framework {framework_id})"
        return refusal(principal, Action.ACCESS_SANDBOXES.value, why)


class _Gate(BasicAuthGate):
    """The agent's HTTP API behind :class:`AgentHttpSecurity`'s authentication."""

    def __init__(self, app: App, security: AgentHttpSecurity) -> None:
        super().__init__(app, security.authenticator)
        self.security = security

    def required(self, method: str, path: str) -> bool:
        return self.security.required(method, path)


def sandbox_roots(agent_sandboxes: Path | None) -> dict[str, Path]:
    """Every run sandbox under ``agents/<agent_id>``, by its name in the files API."""
    roots: dict[str, Path] = {}
    if agent_sandboxes is None:
        return roots
    frameworks = agent_sandboxes / "frameworks"
    try:
        for framework in os.scandir(frameworks):
            executors = Path(framework.path) / "executors"
            for executor in _dirs(executors):
                runs = executors / executor / "runs"
                for entry in os.scandir(runs) if runs.is_dir() else ():
                    name = f"frameworks/{framework.name}/executors/{executor}/runs/{entry.name}"
                    roots[name] = _run_directory(runs, entry)
    except FileNotFoundError:
        pass
    return roots


def _run_directory(runs: Path, entry: os.DirEntry[str]) -> Path:
    """A run's sandbox, never resolved through a link a task may have planted: ``latest`` is
    followed only when it names a sibling run; anything else is served as the link itself,
    which the files API refuses ("not a plain directory")."""
    if entry.name == "latest" and entry.is_symlink():
        try:
            target = os.readlink(entry.path)
        except OSError:
            return Path(entry.path)
        if "/" not in target and target not in ("", ".", ".."):
            return runs / target
    return Path(entry.path)


def _dirs(path: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the agent handles its own signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AgentHttpServer:
    """AgentHttpServer serves the HTTP API on ``ip:port`` until stopped."""

    def __init__(
        self,
        ip: str,
        port: int,
        roots: Callable[[], Mapping[str, Path]],
        state: Callable[[], dict[str, Any]],
        routers: Sequence[APIRouter] = (),
        *,
        tls: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
        security: AgentHttpSecurity | None = None,
    ) -> None:
        app = FastAPI(title="Emporion agent")
        guard = security.sandbox_denied if security is not None else None
        app.include_router(create_files_router(roots, guard=guard))
        for router in routers:
            app.include_router(router)

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/state")
        @app.get("/slave(1)/state")
        async def get_state(jsonp: str | None = None) -> Response:
            """The agent's state in Mesos's shape (``agent.runtime.state_view``)."""
            status, media_type, body = answer(state(), jsonp)
            return Response(body, status_code=status, media_type=media_type)

        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((ip, port))
        except OSError as error:
            self._socket.close()
            raise OSError(
                f"cannot serve the agent's HTTP API on {ip}:{port} (--port):"
                f" {error.strerror or error}",
            ) from None
        self._socket.listen(128)
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]
        # With ``tls`` (certificate, key) it serves HTTPS: the master's sandbox proxy and the
        # CLI then reach it with https (the agent's scheme is in its AgentInfo-derived state).
        served: App = app if security is None else _Gate(app, security)
        config = uvicorn.Config(
            served,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
            # With ``client_ca`` only holders of a certificate it signed are served.
            ssl_ca_certs=str(client_ca) if tls and client_ca else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls and client_ca else ssl.CERT_NONE,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin serving in the background."""
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[self._socket]), name="agent-http"
        )

    async def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._socket.close()
