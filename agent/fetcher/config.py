"""Limits and timeouts of the fetcher, as one frozen value built at the edge."""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class FetcherConfig:
    """How much the fetcher may download and extract, and how long it may wait.

    The defaults follow Mesos where Mesos has one: a 2 GiB cache (``--fetcher_cache_size``) and a
    one-minute stall timeout (``--fetcher_stall_timeout``).
    """

    max_download_bytes: int = 16 * GIB
    """A download or local copy larger than this fails (checked while streaming)."""
    max_extracted_bytes: int = 32 * GIB
    """Bytes an archive may expand to; guards against decompression bombs."""
    max_archive_entries: int = 200_000
    connect_timeout_s: float = 30.0
    stall_timeout_s: float = 60.0
    """An HTTP transfer that receives nothing for this long fails."""
    total_timeout_s: float | None = None
    """An upper bound on a whole download; None: only the stall timeout applies."""
    max_redirects: int = 10
    cache_capacity_bytes: int = 2 * GIB
    """The cache's size cap; least recently used entries are evicted to stay under it."""
    trust_env: bool = True
    """Honour ``http_proxy``/``https_proxy``/``no_proxy`` as Mesos's libcurl does."""

    def __post_init__(self) -> None:
        for name in (
            "max_download_bytes",
            "max_extracted_bytes",
            "max_archive_entries",
            "cache_capacity_bytes",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"FetcherConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_redirects < 0:
            raise ValueError(f"FetcherConfig.max_redirects must be >= 0, got {self.max_redirects}")
        for name in ("connect_timeout_s", "stall_timeout_s", "total_timeout_s"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ValueError(f"FetcherConfig.{name} must be a positive number, got {value}")


DEFAULT_CONFIG = FetcherConfig()
