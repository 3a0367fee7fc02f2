"""The URI fetcher: puts a task's ``CommandInfo.uris`` into its sandbox before it starts.

Local paths and ``file://`` URIs are copied, ``http://`` and ``https://`` URIs downloaded
(streamed to disk, with timeouts, a size cap and redirects). Archives (``.tar``, ``.tar.gz``/
``.tgz``, ``.tar.bz2``/``.tbz2``, ``.tar.xz``/``.txz``, ``.zip``, single-file ``.gz``) are
extracted unless ``extract`` is false or ``executable`` is true; extraction refuses entries that
would land outside the sandbox. ``output_file`` renames, ``executable`` sets mode 0755, ``cache``
goes through an LRU content cache shared by the agent's fetches. See ``docs/sandbox.md``.

Usage from the agent runtime::

    fetched = await fetch_uris(command.uris, sandbox, cache_dir, user=command.user or None)
"""

from agent.fetcher.cache import CacheIndex, FetcherCache, cache_for, cache_key
from agent.fetcher.config import DEFAULT_CONFIG, FetcherConfig
from agent.fetcher.errors import FetchError
from agent.fetcher.fetch import CacheOutcome, FetchedFile, fetch_uris
from agent.fetcher.plan import ArchiveKind, FetchPlan, SourceKind, archive_kind, plan_fetch

__all__ = [
    "DEFAULT_CONFIG",
    "ArchiveKind",
    "CacheIndex",
    "CacheOutcome",
    "FetchError",
    "FetchPlan",
    "FetchedFile",
    "FetcherCache",
    "FetcherConfig",
    "SourceKind",
    "archive_kind",
    "cache_for",
    "cache_key",
    "fetch_uris",
    "plan_fetch",
]
