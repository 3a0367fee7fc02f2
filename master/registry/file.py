"""FileRegistry: the registry as one JSON file under the master's work directory.

The file is ``<work_dir>/registry.json``::

    {"format": "emporion-registry/1", "version": 7,
     "agents": {"<agent id>": <AgentInfo>, ...},
     "unreachable_agents": {"<agent id>": {"info": <AgentInfo>, "unreachable_at": 1700000000.0}},
     "gone_agents": {"<agent id>": 1700000000.0},
     "frameworks": {"<framework id>": {"info": <FrameworkInfo>, "disconnected_at": null}},
     "weights": {"<role>": 2.0},
     "quotas": {"<role>": <QuotaConfig>},
     "reservations": {"<agent id>": [<Resource>, ...]}}

Messages are in Mesos's JSON form (field names as in the .proto). Every ``apply`` writes the whole
file anew: to a temporary file in the same directory, flushed and fsynced, renamed over the old
one, and the directory fsynced, so a crash at any point leaves either the old or the new version,
never a mix. Messages already encoded by an earlier write are not encoded again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from master.registry.codec import FORMAT, StateCodec
from master.registry.protocol import RegistryError
from master.registry.state import Operation, RegistryState, apply_operations

__all__ = ["FORMAT", "FileRegistry"]


class FileRegistry:
    """FileRegistry stores the registry in ``<work_dir>/registry.json`` (see the module doc)."""

    FILE_NAME = "registry.json"

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / self.FILE_NAME
        self._state: RegistryState | None = None
        self._codec = StateCodec()
        self.writes = 0
        """How many times the file was written (for tests and metrics)."""

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> RegistryState:
        """The stored state (empty at version 0 if there is no file yet).

        Raises RegistryError if the file cannot be read or is not a registry.
        """
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.work_dir.glob(self.FILE_NAME + ".tmp-*"):
                stale.unlink()  # Left by a crash mid-write; the rename never happened.
            text = self.path.read_text()
        except FileNotFoundError:
            self._state = RegistryState()
            return self._state
        except OSError as error:
            raise RegistryError(f"cannot read registry {self.path}: {error}") from None
        try:
            self._state = self._codec.decode(text.encode())
        except RegistryError as error:
            raise RegistryError(f"registry file {self.path}: {error}") from None
        return self._state

    # -- writing ------------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation]) -> int:
        """Apply ``operations`` and write the new version durably; return it.

        Raises RegistryError (leaving the old file in place) if the write fails.
        """
        current = self._state if self._state is not None else self.load()
        new = apply_operations(current, operations)
        self._write(new)
        self._state = new
        return new.version

    def _write(self, state: RegistryState) -> None:
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
        self.writes += 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
