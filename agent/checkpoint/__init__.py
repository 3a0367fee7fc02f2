"""The agent's checkpoint: what it writes under ``<work_dir>/meta`` to survive its own restart.

:mod:`~agent.checkpoint.paths` draws and builds the directory tree, :mod:`~agent.checkpoint.files`
holds the crash-safe primitives (atomic writes, the ``task.updates`` log), and
:class:`~agent.checkpoint.store.CheckpointStore` writes and reads the whole checkpoint.
:class:`~agent.checkpoint.memory.MemoryCheckpointStore` is its in-memory twin (for simulations
of agent crashes), and :func:`~agent.checkpoint.apply.apply_checkpoint_effect` carries the
core's checkpoint effects out on either.
"""

from agent.checkpoint.apply import CheckpointWriter, apply_checkpoint_effect
from agent.checkpoint.memory import MemoryCheckpointStore
from agent.checkpoint.store import Checkpoint, CheckpointStore, read_host_boot_id

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "CheckpointWriter",
    "MemoryCheckpointStore",
    "apply_checkpoint_effect",
    "read_host_boot_id",
]
