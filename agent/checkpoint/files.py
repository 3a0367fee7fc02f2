"""Crash-safe file primitives: atomic writes and the append-only ``task.updates`` log.

An atomic write goes to a temporary file in the same directory, is fsync'd, renamed over the
target and the directory fsync'd: after a crash the target holds the old or the new content,
never a mix.

``task.updates`` is a sequence of records, each::

    length (4 bytes, big endian) | crc32 of body (4 bytes, big endian) | body (length bytes)
    body = kind (1 byte: b"U" update, b"A" ack) + payload (TaskStatus bytes, or the 16-byte uuid)

Each append is fsync'd before the caller goes on. A crash mid-append leaves a short or
mismatching last record; :func:`read_update_log` stops at the first such record and reports
how many bytes were good, so :func:`truncate_log` can cut the torn tail before appending again.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path

from google.protobuf.message import DecodeError

from agent.core.effects import UpdateRecord
from protos.v1 import mesos_pb2

__all__ = [
    "append_update_record",
    "atomic_write",
    "decode_record",
    "encode_record",
    "read_update_log",
    "truncate_log",
]

_HEADER = struct.Struct(">II")
_KINDS = {"update": b"U", "ack": b"A"}
_MAX_RECORD = 16 << 20  # A length beyond this is garbage, not a record.


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (creating parent directories)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(path.parent)


def encode_record(record: UpdateRecord) -> bytes:
    """One framed log record."""
    if isinstance(record.payload, bytes):
        payload = record.payload
    else:
        payload = record.payload.SerializeToString(deterministic=True)
    body = _KINDS[record.kind] + payload
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def decode_record(body: bytes) -> UpdateRecord:
    """The record in a checked body; ValueError if its kind or payload is bad."""
    kind, payload = body[:1], body[1:]
    if kind == b"A":
        if len(payload) != 16:
            raise ValueError(f"ack record holds {len(payload)} bytes, not a 16-byte uuid")
        return UpdateRecord("ack", payload)
    if kind == b"U":
        status = mesos_pb2.TaskStatus()
        try:
            status.ParseFromString(payload)
        except DecodeError as error:
            raise ValueError(f"update record holds no TaskStatus: {error}") from None
        return UpdateRecord("update", status)
    raise ValueError(f"unknown record kind {kind!r}")


def append_update_record(path: Path, record: UpdateRecord) -> None:
    """Append one record to a ``task.updates`` log and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, encode_record(record))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def read_update_log(path: Path) -> tuple[list[UpdateRecord], int, bool]:
    """Read a log: (records, bytes of good records, whether a torn or bad tail was dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, False
    records: list[UpdateRecord] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            return records, offset, True
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        body = data[start : start + length]
        if length > _MAX_RECORD or len(body) != length or zlib.crc32(body) != crc:
            return records, offset, True
        try:
            records.append(decode_record(body))
        except ValueError:
            return records, offset, True
        offset = start + length
    return records, offset, False


def truncate_log(path: Path, size: int) -> None:
    """Cut a log back to its first ``size`` bytes (dropping a torn tail) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
