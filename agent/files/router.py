"""The ``/files`` HTTP endpoints (FastAPI): browse, read, tail, download."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse

from agent.files.paths import (
    FilesError,
    Target,
    VirtualDir,
    open_regular,
    resolve,
    sandbox_of,
)
from agent.files.reading import FileStream, list_target, read_chunk, tail
from protos.http_auth import request_principal

MAX_READ_LENGTH = 64 * 1024
"""Cap of one ``/files/read`` chunk: Mesos's 16 pages of 4 KiB."""
DEFAULT_TAIL_LINES = 10
MAX_TAIL_LINES = 10_000
MAX_TAIL_BYTES = 1024 * 1024
DOWNLOAD_CHUNK = 256 * 1024

RootsResolver = Callable[[], Mapping[str, Path]]
SandboxGuard = Callable[[str | None, str], str | None]
"""``(principal, sandbox root name)`` -> why that principal may not read the sandbox (403), or
None if it may: the agent's ``access_sandboxes`` check (:mod:`agent.runtime.http`)."""
T = TypeVar("T")


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking file work off the event loop, turning refusals into HTTP errors."""
    try:
        return await asyncio.to_thread(func, *args)
    except FilesError as error:
        raise HTTPException(error.status, error.detail) from None


def _int_param(name: str, value: str | None, default: int | None, minimum: int) -> int | None:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise HTTPException(
            400, f"query parameter '{name}' must be an integer, got '{value}'"
        ) from None
    if number < minimum:
        detail = f"query parameter '{name}' must be >= {minimum}, got {number}"
        raise HTTPException(400, detail)
    return number


def _content_disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def create_files_router(
    resolve_roots: RootsResolver,
    *,
    max_read_length: int = MAX_READ_LENGTH,
    max_tail_lines: int = MAX_TAIL_LINES,
    max_tail_bytes: int = MAX_TAIL_BYTES,
    guard: SandboxGuard | None = None,
) -> APIRouter:
    """The ``/files`` routes over the sandboxes ``resolve_roots()`` exposes.

    ``resolve_roots`` is called on the event loop for every request and returns
    ``{root name: sandbox directory}``; a name may hold slashes
    (``frameworks/F/executors/E/runs/latest``). Virtual paths are ``/<root name>/<relative>``.
    With ``guard``, a sandbox is served only to the principals it admits (the principal is the
    one the HTTP gate left in the request's scope, :mod:`protos.http_auth`): a path in another
    is 403 naming principal and action, and virtual directories list only admitted sandboxes.
    """
    router = APIRouter(prefix="/files", tags=["files"])

    async def found_for(request: Request, path: str | None) -> Target | VirtualDir:
        roots = dict(resolve_roots())
        if guard is not None:
            # Decided before anything is opened: a refused principal learns nothing of what
            # the sandbox holds (not even whether a file exists).
            principal = request_principal(request.scope)
            try:
                sandbox = sandbox_of(path, roots)
            except FilesError as error:
                raise HTTPException(error.status, error.detail) from None
            if sandbox is not None:
                if (why := guard(principal, sandbox)) is not None:
                    raise HTTPException(403, why)
            else:
                roots = {n: root for n, root in roots.items() if guard(principal, n) is None}
        return await _in_thread(resolve, path, roots)

    async def target_of(request: Request, path: str | None) -> Target:
        found = await found_for(request, path)
        if isinstance(found, VirtualDir):
            raise HTTPException(400, f"'{found.virtual}' is a directory")
        return found

    @router.get("/browse")
    async def browse(request: Request, path: str | None = None) -> list[dict[str, Any]]:
        """List a directory (or describe one file): name, path, size, mode, mtime, is_dir."""
        found = await found_for(request, path)
        return await _in_thread(list_target, found)

    @router.get("/read")
    async def read(
        request: Request,
        path: str | None = None,
        offset: str | None = None,
        length: str | None = None,
    ) -> dict[str, Any]:
        """``{"data", "offset"}``; offset -1 (the default, as in Mesos) gives the size."""
        start = _int_param("offset", offset, -1, -1)
        count = _int_param("length", length, None, 0)
        target = await target_of(request, path)
        return await _in_thread(read_chunk, target, start, count, max_read_length)

    @router.get("/tail")
    async def tail_lines(
        request: Request, path: str | None = None, lines: str | None = None
    ) -> dict[str, Any]:
        """The last ``lines`` lines: ``{"data", "offset", "size"}``."""
        wanted = _int_param("lines", lines, DEFAULT_TAIL_LINES, 0)
        assert wanted is not None
        if wanted > max_tail_lines:
            raise HTTPException(400, f"query parameter 'lines' must be <= {max_tail_lines}")
        target = await target_of(request, path)
        return await _in_thread(tail, target, wanted, max_tail_bytes)

    @router.get("/download")
    async def download(request: Request, path: str | None = None) -> StreamingResponse:
        """The file's bytes, streamed, as they were when the request arrived."""
        target = await target_of(request, path)
        fd, st = await _in_thread(open_regular, target)
        stream = FileStream(fd, st.st_size)

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(stream.read, DOWNLOAD_CHUNK):
                    yield chunk
            finally:
                stream.close()

        name = target.virtual.rsplit("/", 1)[-1]
        headers = {
            "Content-Length": str(st.st_size),
            "Content-Disposition": _content_disposition(name),
        }
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return StreamingResponse(body(), media_type=media_type, headers=headers)

    return router


def create_app(
    resolve_roots: RootsResolver,
    *,
    max_read_length: int = MAX_READ_LENGTH,
    max_tail_lines: int = MAX_TAIL_LINES,
    max_tail_bytes: int = MAX_TAIL_BYTES,
) -> FastAPI:
    """A FastAPI app serving only the files API (for tests and small tools)."""
    app = FastAPI(title="Emporion agent files API")
    app.include_router(
        create_files_router(
            resolve_roots,
            max_read_length=max_read_length,
            max_tail_lines=max_tail_lines,
            max_tail_bytes=max_tail_bytes,
        )
    )
    return app
