"""The agent's checkpoint: what it writes under ``<work_dir>/meta`` to survive its own restart.

:mod:`~agent.checkpoint.paths` draws and builds the directory tree, :mod:`~agent.checkpoint.files`
holds the crash-safe primitives (atomic writes, the ``task.updates`` log), and
:class:`~agent.checkpoint.store.CheckpointStore` writes and reads the whole checkpoint.
"""

from agent.checkpoint.store import Checkpoint, CheckpointStore, read_host_boot_id

__all__ = ["Checkpoint", "CheckpointStore", "read_host_boot_id"]
