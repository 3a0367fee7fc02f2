"""A task's sandbox, read through the master: the agent's file API, proxied.

The browser only needs to reach the master. For a task the master finds its agent
(``agent_info.hostname:port``, the agent's HTTP API) and its sandbox's virtual path on that
agent, ``/frameworks/<F>/executors/<E>/runs/latest`` (a command task's executor id is its task
id; see ``docs/sandbox.md``), and forwards listing, reading, tailing and downloading to the
agent's ``/files`` endpoints. Paths the browser sends are relative to the sandbox; ``..``
segments are refused here (and again by the agent), so the proxy can only ever ask for files of
that one sandbox.

Errors keep their meaning: the agent's 400/403/404 come back with its detail; an agent that
does not answer is 502 naming it.
"""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from master.auth.http import AGENT_SCHEME, agent_headers
from master.core import Master
from master.http.leadership import leading
from master.http.view import MasterView

from .api import OperatorCalls, agent_row, task_row
from .calls import UiCallError, call, ui_route_class
from .render import Renderer

__all__ = ["SandboxTarget", "relative_path", "sandbox_router"]

AGENT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
"""How long the master waits for an agent's file API."""
MAX_READ = 64 * 1024
"""The most bytes one read returns (the agent's own cap)."""


@dataclass(frozen=True, slots=True)
class SandboxTarget:
    """SandboxTarget: where a task's sandbox is, on which agent."""

    agent: str
    """``host:port`` of the agent's HTTP API."""
    root: str
    """The sandbox's virtual path on the agent."""

    def path(self, relative: str) -> str:
        """The agent's virtual path of ``relative`` (already checked by :func:`relative_path`)."""
        return f"{self.root}/{relative}" if relative else self.root


def relative_path(path: str) -> str:
    """``path`` relative to a sandbox, normalised (no empty or ``.`` segments).

    Raises UiCallError (400) for a ``..`` segment, a NUL byte or a backslash.
    """
    if "\x00" in path or "\\" in path:
        raise UiCallError(400, f"query parameter 'path' holds a forbidden character: {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UiCallError(400, f"query parameter 'path' must stay inside the sandbox: {path!r}")
    return "/".join(parts)


def _locate(operator: OperatorCalls, framework_id: str, task_id: str) -> SandboxTarget:
    found = call(
        operator,
        {
            "type": "GET_TASKS",
            "get_tasks": {"framework_id": framework_id, "task_id": task_id, "limit": 1},
        },
    )["get_tasks"]
    task = next(
        (found[k][0] for k in ("tasks", "unreachable_tasks", "completed_tasks") if found.get(k)),
        None,
    )
    if task is None:
        raise UiCallError(404, f"no task {task_id!r} of framework {framework_id!r} is known")
    row = task_row(task)
    agents = call(
        operator, {"type": "GET_AGENTS", "get_agents": {"agent_id": row.agent_id, "limit": 1}}
    )["get_agents"].get("agents", [])
    if not agents:
        raise UiCallError(
            404, f"agent {row.agent_id!r} of task {task_id!r} is not registered: no sandbox"
        )
    agent = agent_row(agents[0])
    executor = row.executor_id or row.task_id
    # Ids are path-safe (the master refuses '/' and '..' in them), so they join as they are.
    root = f"/frameworks/{framework_id}/executors/{executor}/runs/latest"
    return SandboxTarget(f"{agent.hostname}:{agent.port}", root)


def _crumbs(relative: str) -> list[tuple[str, str]]:
    parts = relative.split("/") if relative else []
    return [(name, "/".join(parts[: i + 1])) for i, name in enumerate(parts)]


def sandbox_router(view: MasterView, operator: OperatorCalls, renderer: Renderer) -> APIRouter:
    """``/ui/sandbox/<framework>/<task>/{files,read,tail,download}`` (leader-only)."""
    router = APIRouter(
        prefix="/ui/sandbox/{framework_id}/{task_id}",
        include_in_schema=False,
        route_class=ui_route_class(renderer),
    )
    lead = Annotated[Master, Depends(leading(view))]

    def client() -> httpx.AsyncClient:
        # One client per request: nothing to close when the master stops.
        return httpx.AsyncClient(
            timeout=AGENT_TIMEOUT,
            trust_env=False,
            verify=AGENT_SCHEME.get()[1],
            headers=agent_headers(),  # The user's credentials: the agent may check them too.
        )

    async def agent_get(target: SandboxTarget, endpoint: str, **params: Any) -> Any:
        url = f"{AGENT_SCHEME.get()[0]}://{target.agent}/files/{endpoint}"
        try:
            async with client() as session:
                response = await session.get(url, params=params)
        except httpx.HTTPError as error:
            raise UiCallError(
                502, f"agent {target.agent} did not answer {endpoint}: {error or type(error)}"
            ) from error
        if response.status_code != 200:
            try:
                found = response.json()
                detail = found.get("detail") or found.get("error") or response.text
            except ValueError:
                detail = response.text
            raise UiCallError(response.status_code, f"agent {target.agent}: {detail}")
        return response.json()

    @router.get("/files", response_class=HTMLResponse)
    async def files(framework_id: str, task_id: str, _: lead, path: str = "") -> HTMLResponse:
        """The sandbox directory ``path`` as an HTML fragment."""
        relative = relative_path(path)
        target = _locate(operator, framework_id, task_id)
        entries = await agent_get(target, "browse", path=target.path(relative))
        prefix = target.root + "/"
        rows = [
            {**entry, "rel": str(entry.get("path", "")).removeprefix(prefix)} for entry in entries
        ]
        return renderer.page(
            "parts/sandbox_files.html",
            files=rows,
            crumbs=_crumbs(relative),
            base=f"/ui/sandbox/{quote(framework_id, safe='')}/{quote(task_id, safe='')}",
        )

    @router.get("/read")
    async def read(
        framework_id: str,
        task_id: str,
        _: lead,
        path: str,
        offset: Annotated[int, Query(ge=-1)] = -1,
        length: Annotated[int, Query(ge=0, le=MAX_READ)] = MAX_READ,
    ) -> JSONResponse:
        """``{"data", "offset", "next"}``: up to ``length`` bytes of ``path`` from ``offset``
        (``-1``: none, and ``offset`` is the size); ``next`` is where to read on from."""
        target = _locate(operator, framework_id, task_id)
        found = await agent_get(
            target, "read", path=target.path(relative_path(path)), offset=offset, length=length
        )
        data = str(found.get("data", ""))
        start = int(found.get("offset", 0))
        return JSONResponse({"data": data, "offset": start, "next": start + len(data.encode())})

    @router.get("/tail")
    async def tail(
        framework_id: str,
        task_id: str,
        _: lead,
        path: str,
        lines: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> JSONResponse:
        """``{"data", "offset", "size"}``: the last ``lines`` lines of ``path``."""
        target = _locate(operator, framework_id, task_id)
        found = await agent_get(target, "tail", path=target.path(relative_path(path)), lines=lines)
        return JSONResponse(found)

    @router.get("/download")
    async def download(framework_id: str, task_id: str, _: lead, path: str) -> StreamingResponse:
        """The raw bytes of ``path``, streamed from the agent as they arrive."""
        relative = relative_path(path)
        target = _locate(operator, framework_id, task_id)
        session = client()
        request = session.build_request(
            "GET",
            f"{AGENT_SCHEME.get()[0]}://{target.agent}/files/download",
            params={"path": target.path(relative)},
        )
        try:
            response = await session.send(request, stream=True)
        except httpx.HTTPError as error:
            await session.aclose()
            raise UiCallError(
                502, f"agent {target.agent} did not answer download: {error}"
            ) from error
        if response.status_code != 200:
            text = (await response.aread()).decode(errors="replace")
            await response.aclose()
            await session.aclose()
            raise UiCallError(response.status_code, f"agent {target.agent}: {text}")

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()
                await session.aclose()

        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("content-length", "content-disposition", "content-type")
        }
        return StreamingResponse(body(), headers=headers)

    return router
