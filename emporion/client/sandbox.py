"""A task's stdout and stderr, read through the master, which proxies the agent's file API.

The user's machine may reach only the master, so files are read the way the web UI reads them:
``GET /ui/sandbox/<framework>/<task>/read?path=stdout&offset=N`` on the master's HTTP API
(``master/http/ui/sandbox.py``) answers ``{"data", "offset", "next"}``, at most 64 KiB at a time,
and ``{"detail"}`` with the agent's status when it cannot. A :class:`SandboxFile` keeps the offset
to read on from; :func:`read_all` drains what is there now; :func:`follow` keeps reading until
told the task ended, then drains the rest.

Bytes are decoded as UTF-8 by the agent (U+FFFD for what is not), as the web UI shows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import httpx

from emporion.client.errors import ClientError, NotFoundError, UnreachableError, UsageError

__all__ = ["SandboxFile", "follow", "read_all"]

MAX_READ = 64 * 1024
"""The most the proxy returns per read (the agent's cap)."""

POLL_FAST = 0.25
"""Seconds between reads while output flows."""
POLL_SLOW = 1.0
"""Seconds between reads once a file has been quiet for a while."""
FOLLOW_ATTEMPTS = 5
"""Failed reads in a row after which following gives up (the last error is raised)."""


class SandboxFile:
    """SandboxFile reads one file of one task's sandbox from ``offset`` on.

    ``client`` is an httpx.AsyncClient whose ``base_url`` is the master's HTTP API; ``given``
    is the ``--master`` named in messages.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        given: str,
        framework_id: str,
        task_id: str,
        *,
        path: str = "stdout",
        offset: int = 0,
    ) -> None:
        self.client = client
        self.given = given
        self.task_id = task_id
        self.path = path
        self.offset = offset
        self._url = f"/ui/sandbox/{quote(framework_id, safe='')}/{quote(task_id, safe='')}/read"

    async def read(self) -> str:
        """The next chunk ("" when nothing new); moves the offset past it.

        NotFoundError while the file (or the task's sandbox) does not exist yet or any more.
        """
        params: dict[str, str | int] = {"path": self.path, "offset": self.offset}
        params["length"] = MAX_READ
        try:
            response = await self.client.get(self._url, params=params)
        except httpx.HTTPError as error:
            raise UnreachableError(self.given, str(error) or type(error).__name__) from None
        if response.status_code != 200:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text.strip()
            message = f"{self.path} of task {self.task_id!r}: {detail}"
            if response.status_code == 404:
                raise NotFoundError(message)
            if response.status_code == 503:
                raise UnreachableError(self.given, detail)
            if response.status_code == 401:
                raise UsageError(f"the master at {self.given} asks for credentials: {detail}")
            raise ClientError(message)
        found = response.json()
        data = str(found.get("data", ""))
        self.offset = int(found.get("next", self.offset))
        return data


async def read_all(file: SandboxFile) -> AsyncIterator[str]:
    """Every chunk from the file's offset to its current end."""
    while chunk := await file.read():
        yield chunk


async def follow(
    file: SandboxFile,
    ended: Callable[[], bool],
    *,
    fast: float = POLL_FAST,
    slow: float = POLL_SLOW,
    attempts: int = FOLLOW_ATTEMPTS,
) -> AsyncIterator[str]:
    """Chunks as they are written, until ``ended()`` is true; then the rest, then stop.

    A file that does not exist yet (the task is still being fetched or launched) is waited for;
    once the task ended, a file that never appeared ends the iteration. Reads come every
    ``fast`` seconds while output flows, every ``slow`` after a quiet spell (each read costs the
    master two lookups and a call to the agent: many followers slow down). A read that fails
    (the master or the agent did not answer) is tried again after ``slow`` seconds; the error
    is raised after ``attempts`` failures in a row.
    """
    quiet = failures = 0
    while True:
        finished = ended()  # Read after this check: nothing written before the end is missed.
        try:
            chunk = await file.read()
        except NotFoundError:
            if finished:
                return
            chunk = ""
        except ClientError:
            failures += 1
            if failures >= attempts:
                raise
            await asyncio.sleep(slow)
            continue
        failures = 0
        if chunk:
            quiet = 0
            yield chunk
            continue  # More may be waiting: read again at once.
        if finished:
            return
        quiet += 1
        await asyncio.sleep(fast if quiet < 8 else slow)
