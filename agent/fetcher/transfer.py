"""Getting a resource's bytes into a file: HTTP(S) downloads and local copies.

Both write to a path that must not exist yet (the caller picks a temporary name and renames it
into place) and enforce the size cap while streaming, since a Content-Length header or a
file's size can lie or change. Disk writes happen in worker threads.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
from pathlib import Path

import httpx

from agent.fetcher.config import FetcherConfig
from agent.fetcher.errors import FetchError
from agent.fetcher.plan import FetchPlan, SourceKind
from agent.fetcher.threads import run_blocking

_CHUNK = 1024 * 1024


def copy_local(uri: str, source: str, dest: Path, max_bytes: int) -> int:
    """Copy the regular file ``source`` to the new file ``dest``; returns the bytes copied."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is refused below.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FetchError(uri, f"local file '{source}' does not exist") from None
    except OSError as error:
        raise FetchError(uri, f"cannot open '{source}': {error.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FetchError(uri, f"'{source}' is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise FetchError(uri, f"'{source}' is not a regular file")
        if st.st_size > max_bytes:
            raise FetchError(uri, f"file is {st.st_size} bytes, over the {max_bytes}-byte limit")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as src:
        copied = 0
        with open(dest, "xb") as out:
            while chunk := src.read(_CHUNK):
                copied += len(chunk)
                if copied > max_bytes:
                    raise FetchError(uri, f"file grew past the {max_bytes}-byte limit")
                out.write(chunk)
    return copied


async def _stream(response: httpx.Response, dest: Path, uri: str, max_bytes: int) -> int:
    # Creating an empty file is quick; doing it here means a cancellation can never leave an
    # open file behind.
    out = open(dest, "xb")  # noqa: SIM115
    received = 0
    pending = bytearray()
    try:
        # Raw bytes, as curl saves them: a .tar.gz served with Content-Encoding: gzip stays
        # a .tar.gz.
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > max_bytes:
                raise FetchError(uri, f"download exceeds the {max_bytes}-byte limit")
            pending += chunk
            if len(pending) >= _CHUNK:
                await run_blocking(out.write, bytes(pending))
                pending.clear()
        if pending:
            await run_blocking(out.write, bytes(pending))
    finally:
        await run_blocking(out.close)
    return received


_ssl_contexts: dict[bool, ssl.SSLContext] = {}


async def _ssl_context(trust_env: bool) -> ssl.SSLContext:
    """The verifying TLS context, built once in a thread: loading the CA bundle takes tens of
    milliseconds, which every new client would otherwise spend on the event loop."""
    context = _ssl_contexts.get(trust_env)
    if context is None:
        context = await run_blocking(httpx.create_ssl_context, True, None, trust_env)
        _ssl_contexts[trust_env] = context
    return context


async def download_http(uri: str, dest: Path, config: FetcherConfig) -> int:
    """Download ``uri`` (following redirects) into the new file ``dest``; returns its size."""
    timeout = httpx.Timeout(config.stall_timeout_s, connect=config.connect_timeout_s)
    try:
        context = await _ssl_context(config.trust_env)
        async with (
            asyncio.timeout(config.total_timeout_s),
            httpx.AsyncClient(
                follow_redirects=True,
                max_redirects=config.max_redirects,
                timeout=timeout,
                trust_env=config.trust_env,
                verify=context,
            ) as client,
            client.stream("GET", uri, headers={"Accept-Encoding": "identity"}) as response,
        ):
            status = response.status_code
            if status >= 400:
                raise FetchError(uri, f"HTTP {status} {response.reason_phrase}".rstrip())
            if not 200 <= status < 300:
                raise FetchError(uri, f"unexpected HTTP status {status}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > config.max_download_bytes:
                raise FetchError(
                    uri,
                    f"Content-Length {declared} is over the {config.max_download_bytes}-byte limit",
                )
            return await _stream(response, dest, uri, config.max_download_bytes)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(uri, f"download took longer than {config.total_timeout_s}s") from None
    except httpx.ConnectTimeout:
        raise FetchError(uri, f"connect timed out after {config.connect_timeout_s}s") from None
    except httpx.TimeoutException:
        raise FetchError(uri, f"stalled: no data for {config.stall_timeout_s}s") from None
    except httpx.TooManyRedirects:
        raise FetchError(uri, f"more than {config.max_redirects} redirects") from None
    except httpx.HTTPError as error:
        raise FetchError(uri, f"{type(error).__name__}: {error}") from None
    except httpx.InvalidURL as error:
        raise FetchError(uri, f"invalid URL: {error}") from None
    except OSError as error:
        raise FetchError(uri, f"cannot write the download: {error}") from None
    except Exception as error:
        # The HTTP stack's other failures (anyio task groups, codecs): still the URI's failure.
        raise FetchError(uri, f"{type(error).__name__}: {error}") from None


async def transfer(plan: FetchPlan, dest: Path, config: FetcherConfig) -> int:
    """Put the bytes of ``plan``'s resource into the new file ``dest``; returns its size."""
    if plan.kind is SourceKind.LOCAL:
        try:
            return await run_blocking(
                copy_local, plan.uri, plan.location, dest, config.max_download_bytes
            )
        except OSError as error:
            raise FetchError(plan.uri, f"cannot copy: {error}") from None
    return await download_http(plan.uri, dest, config)
