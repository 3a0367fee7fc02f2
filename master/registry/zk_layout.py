"""The ZooKeeper registry's znodes: the snapshot header, chunk and delta names, delta payloads.

Kept apart from :mod:`master.registry.zookeeper` (which reads and writes them) so that the
layout, drawn in that module's docstring, is defined in one place.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from master.registry.codec import FORMAT
from master.registry.journal import decode_line, encode_line
from master.registry.protocol import RegistryError
from master.registry.state import Operation

__all__ = [
    "CHUNK_RE",
    "DELTA_RE",
    "Header",
    "decode_delta",
    "delta_name",
    "encode_delta",
]

CHUNK_RE = re.compile(r"chunk-(\d{10})-([0-9a-f]+)-(\d{4})")
"""A snapshot chunk: ``chunk-<version>-<random hex>-<index>``."""

DELTA_RE = re.compile(r"delta-(\d{10})")
"""A delta: ``delta-<version>``, the operations of the write that made that version."""


def delta_name(version: int) -> str:
    """The name of the delta znode of ``version``."""
    return f"delta-{version:010d}"


def encode_delta(version: int, operations: Sequence[Operation]) -> bytes:
    """A delta's data: the journal line of the write (:mod:`master.registry.journal`), zlib'd."""
    return zlib.compress(encode_line(version, operations), 6)


def decode_delta(data: bytes, version: int, where: str) -> list[Operation]:
    """The operations of the delta of ``version``; RegistryError naming ``where`` if the data is
    not that delta."""
    try:
        line = zlib.decompress(data)
    except zlib.error as error:
        raise RegistryError(f"{where}: cannot decompress: {error}") from None
    found, operations = decode_line(line, where)
    if found != version:
        raise RegistryError(f"{where}: holds version {found}, not {version}")
    return operations


@dataclass(frozen=True, slots=True)
class Header:
    """Header is the registry znode's first line: which snapshot is current, and where it is.

    ``version`` is the snapshot's; the deltas after it carry the versions that followed.
    ``generation`` (``<version:010d>-<random hex>``) names its chunks, if ``chunks`` > 0.
    """

    version: int
    size: int
    sha256: str
    chunks: int
    generation: str

    def encode(self) -> bytes:
        """The header line (without its newline)."""
        doc = {
            "format": FORMAT,
            "version": self.version,
            "encoding": "zlib",
            "size": self.size,
            "sha256": self.sha256,
            "chunks": self.chunks,
            "generation": self.generation,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def decode(line: bytes, where: str) -> Header:
        """The header in ``line``; RegistryError naming ``where`` if it is not one."""
        try:
            doc: Any = json.loads(line)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not in format {FORMAT!r}")
            if doc.get("encoding") != "zlib":
                raise ValueError(f"unknown encoding {doc.get('encoding')!r}")
            header = Header(
                int(doc["version"]),
                int(doc["size"]),
                str(doc["sha256"]),
                int(doc["chunks"]),
                str(doc["generation"]),
            )
        except (UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
            raise RegistryError(f"registry {where}: bad header: {error}") from None
        if header.chunks < 0 or header.size < 0:
            raise RegistryError(f"registry {where}: bad header: negative size or chunk count")
        return header

    def chunk_names(self) -> list[str]:
        """The names of the snapshot's chunks (none if it is inline)."""
        return [f"chunk-{self.generation}-{i:04d}" for i in range(self.chunks)]
