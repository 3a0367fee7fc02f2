"""Errors of the isolation layer.

::

    IsolationError            something the isolation layer could not do (names the path or step)
     ├── LaunchError          a container did not start; nothing of it was left behind
     └── IsolationUnavailableError the requested isolation mode cannot run on this host

Malformed input (a bad container id, limits or launch spec) raises ``ValueError`` instead.
"""

from __future__ import annotations


class IsolationError(Exception):
    """Something the isolation layer could not do; the message names the path or step."""


class LaunchError(IsolationError):
    """A container could not be started. Its cgroups and processes were removed."""


class IsolationUnavailableError(IsolationError):
    """The requested isolation mode cannot run on this host; the message says why."""
