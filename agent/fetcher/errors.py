"""The fetcher's exceptions.

::

    Exception
     +-- FetchError            a URI could not be fetched; the message names the URI and the cause
     +-- ArchiveError          an archive is corrupt, too large, or conflicts with the sandbox
          +-- UnsafeArchiveError   an entry would land outside the sandbox, or is a device

``ArchiveError`` never leaves the package: :func:`agent.fetcher.fetch_uris` wraps it in a
``FetchError`` that names the URI.
"""

from __future__ import annotations


class FetchError(Exception):
    """A URI could not be fetched into a sandbox; the message names the URI and the cause."""

    def __init__(self, uri: str, cause: str) -> None:
        super().__init__(f"failed to fetch '{uri}': {cause}")
        self.uri = uri
        self.cause = cause


class ArchiveError(Exception):
    """An archive could not be extracted: corrupt, over a limit, or in conflict with the sandbox."""


class UnsafeArchiveError(ArchiveError):
    """An archive holds an entry that is refused: it escapes, is absolute, or is a device."""
