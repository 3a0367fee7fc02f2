"""The sandbox file API: browse, read, tail and download files in the agent's sandboxes.

Mirrors Mesos's ``/files/browse``, ``/files/read`` and ``/files/download`` (plus ``/files/tail``)
over JSON, confined to the sandboxes the agent exposes: ``..``, paths under no sandbox and
symlinks that resolve outside their sandbox are refused with a 4xx and ``{"detail": ...}``.
File work runs in threads and downloads stream, so large files never block the event loop.
See ``docs/sandbox.md`` for requests and responses.
"""

from agent.files.paths import FilesError, resolve
from agent.files.router import MAX_READ_LENGTH, create_app, create_files_router

__all__ = ["MAX_READ_LENGTH", "FilesError", "create_app", "create_files_router", "resolve"]
