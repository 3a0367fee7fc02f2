"""FileRegistry: the registry under the master's work directory, as a snapshot and a journal.

``<work_dir>/registry.json`` is the registry document (:mod:`master.registry.codec`)::

    {"format": "emporion-registry/1", "version": 7,
     "agents": {"<agent id>": <AgentInfo>, ...},
     "unreachable_agents": {"<agent id>": {"info": <AgentInfo>, "unreachable_at": 1700000000.0}},
     "gone_agents": {"<agent id>": 1700000000.0},
     "frameworks": {"<framework id>": {"info": <FrameworkInfo>, "disconnected_at": null}},
     "weights": {"<role>": 2.0},
     "quotas": {"<role>": <QuotaConfig>},
     "reservations": {"<agent id>": [<Resource>, ...]},
     "agent_principals": {"<agent id>": "<principal>"}}

and ``<work_dir>/registry.journal`` the writes made since, one line each
(:mod:`master.registry.journal`). The registry is the document with the journal's lines of
higher versions replayed over it.

Why two files: rewriting a 50,000-agent document (tens of megabytes of JSON) for every batch of
registrations made each registration cost time proportional to the cluster, and the encoding
held the interpreter's lock against the master's loop. A write now appends its line (flushed and
fsynced; the directory too when the journal is created), which costs what it changed. The
document is rewritten only while it is small (under ``snapshot_min_bytes``: small registries
stay one file, as they always were) or once the journal would outgrow it; so over a run the
rewrites cost at most about twice the appends, whatever the cluster's size.

A rewrite goes to a temporary file in the same directory, flushed and fsynced, renamed over the
old one, and the directory fsynced; then the journal is emptied. A crash at any point leaves
either the old or the new version: before the rename the old document and the journal hold the
old version, after it the journal's lines are all of versions the document already holds and a
load skips them. A crash in the middle of an append leaves a last line without its newline: a
load drops it (it was never acknowledged) and truncates it away. Any other damage is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from master.registry.codec import FORMAT, StateCodec
from master.registry.journal import decode_line, encode_line
from master.registry.protocol import RegistryError
from master.registry.state import Operation, RegistryState, apply_in_place, apply_operations

__all__ = ["FORMAT", "FileRegistry"]

SNAPSHOT_MIN_BYTES = 256 * 1024
"""Below this size the document is rewritten on every write (no journal)."""


class FileRegistry:
    """FileRegistry stores the registry in ``<work_dir>/registry.json`` and
    ``<work_dir>/registry.journal`` (see the module doc)."""

    FILE_NAME = "registry.json"
    JOURNAL_NAME = "registry.journal"

    def __init__(self, work_dir: Path, *, snapshot_min_bytes: int = SNAPSHOT_MIN_BYTES) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / self.FILE_NAME
        self.journal_path = self.work_dir / self.JOURNAL_NAME
        self.snapshot_min_bytes = snapshot_min_bytes
        self._state: RegistryState | None = None
        self._codec = StateCodec()
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self.writes = 0
        """How many times the registry was written (for tests and metrics)."""
        self.snapshots = 0
        """How many of those writes rewrote the whole document."""

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> RegistryState:
        """The stored state (empty at version 0 if there is no file yet).

        Raises RegistryError if a file cannot be read or is not a registry.
        """
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.work_dir.glob(self.FILE_NAME + ".tmp-*"):
                stale.unlink()  # Left by a crash mid-write; the rename never happened.
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as error:
            raise RegistryError(f"cannot read registry {self.path}: {error}") from None
        if data is None:
            state = RegistryState()
            self._snapshot_bytes = 0
        else:
            try:
                state = self._codec.decode(data)
            except RegistryError as error:
                raise RegistryError(f"registry file {self.path}: {error}") from None
            self._snapshot_bytes = len(data)
        self._journal_bytes = self._replay(state)
        self._state = state
        return state

    def _replay(self, state: RegistryState) -> int:
        """Apply the journal's lines newer than ``state`` to it; the journal's good length."""
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as error:
            raise RegistryError(
                f"cannot read registry journal {self.journal_path}: {error}"
            ) from None
        end = data.rfind(b"\n") + 1
        for number, line in enumerate(data[:end].splitlines(), start=1):
            where = f"registry journal {self.journal_path}:{number}"
            version, operations = decode_line(line, where)
            if version <= state.version:
                continue  # Written before the document was last rewritten.
            if version != state.version + 1:
                raise RegistryError(f"{where}: version {version} follows {state.version}")
            apply_in_place(state, operations)
            state.version = version
        if end < len(data):  # A torn last append: never acknowledged, so never happened.
            try:
                os.truncate(self.journal_path, end)
            except OSError as error:
                raise RegistryError(
                    f"cannot truncate registry journal {self.journal_path}: {error}"
                ) from None
        return end

    # -- writing ------------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation]) -> int:
        """Apply ``operations`` and write the new version durably; return it.

        Raises RegistryError (leaving the stored registry as it was) if the write fails.
        """
        current = self._state if self._state is not None else self.load()
        new = apply_operations(current, operations)
        if self._snapshot_bytes < self.snapshot_min_bytes:
            self._write_snapshot(new)
        else:
            line = encode_line(new.version, operations)
            if self._journal_bytes + len(line) > self._snapshot_bytes:
                self._write_snapshot(new)
            else:
                self._append(line)
        self._state = new
        self.writes += 1
        return new.version

    def _append(self, line: bytes) -> None:
        created = not self.journal_path.exists()
        try:
            with open(self.journal_path, "ab") as out:
                try:
                    out.write(line)
                    out.flush()
                    os.fsync(out.fileno())
                except OSError:
                    with contextlib.suppress(OSError):
                        out.truncate(self._journal_bytes)  # Take back what got in.
                    raise
            if created:
                _fsync_dir(self.work_dir)
        except OSError as error:
            raise RegistryError(f"cannot write registry {self.journal_path}: {error}") from None
        self._journal_bytes += len(line)

    def _write_snapshot(self, state: RegistryState) -> None:
        data = self._codec.encode(state)
        tmp = self.path.with_name(f"{self.FILE_NAME}.tmp-{os.getpid()}")
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.work_dir)
        except OSError as error:
            _remove_quietly(tmp)
            raise RegistryError(f"cannot write registry {self.path}: {error}") from None
        self._snapshot_bytes = len(data)
        self.snapshots += 1
        if self._journal_bytes or self.journal_path.exists():
            # Its lines are all of older versions now; a failure to empty it only costs space
            # (a load skips them), so the next rewrite tries again.
            try:
                os.truncate(self.journal_path, 0)
                self._journal_bytes = 0
            except FileNotFoundError:
                self._journal_bytes = 0
            except OSError:
                with contextlib.suppress(OSError):
                    self._journal_bytes = self.journal_path.stat().st_size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
