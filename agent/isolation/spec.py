"""LaunchSpec: everything needed to start one container, and container id validation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from agent.isolation.limits import ContainerLimits

# Like Mesos' ContainerID rule: letters, digits, '-', '_' and '.', not starting with '.'
# (so never '.', '..' or a hidden name), and short enough to be a path component.
_CONTAINER_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")
SHELL = "/bin/sh"


def validate_container_id(container_id: str, what: str = "container id") -> str:
    """Return ``container_id`` if it is safe as a directory name; else raise ValueError."""
    if not isinstance(container_id, str) or not _CONTAINER_ID.fullmatch(container_id):
        raise ValueError(
            f"invalid {what} {container_id!r}: use 1-200 letters, digits, '-', '_' or '.', "
            "not starting with '.'"
        )
    return container_id


@dataclass(frozen=True)
class LaunchSpec:
    """A container to start: the command, its environment, sandbox, limits and user.

    ``shell=True`` runs ``argv[0]`` with ``/bin/sh -c`` (argv must then hold exactly the
    command string). ``namespaces=None`` uses PID and mount namespaces when the host allows
    them; True requires them; False never uses them. stdout and stderr are appended to the
    files ``stdout`` and ``stderr`` in ``sandbox``, which must exist. ``readonly_dirs`` (the
    agent's work directory) are read-only for the task where it has a mount namespace, except
    the sandbox itself, which stays writable (docs/security.md).
    """

    container_id: str
    argv: Sequence[str]
    env: Mapping[str, str]
    sandbox: Path
    limits: ContainerLimits
    user: str | None = None
    shell: bool = False
    namespaces: bool | None = None
    readonly_dirs: Sequence[Path] = ()

    def __post_init__(self) -> None:
        validate_container_id(self.container_id)
        if isinstance(self.argv, str) or not self.argv:
            raise ValueError(f"argv must be a non-empty sequence of strings, got {self.argv!r}")
        for arg in self.argv:
            if not isinstance(arg, str) or "\0" in arg:
                raise ValueError(f"argv holds {arg!r}: arguments are strings without NUL")
        if self.shell and len(self.argv) != 1:
            raise ValueError(
                f"shell=True takes exactly one command string in argv, got {len(self.argv)}"
            )
        for key, value in self.env.items():
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise ValueError(f"invalid environment variable {key!r}")
        if not Path(self.sandbox).is_absolute():
            raise ValueError(f"sandbox must be an absolute path, got {str(self.sandbox)!r}")
        if self.user is not None and (not self.user or "/" in self.user or ":" in self.user):
            raise ValueError(f"invalid user name {self.user!r}")
        for directory in self.readonly_dirs:
            if not Path(directory).is_absolute():
                raise ValueError(f"readonly_dirs must be absolute paths, got {str(directory)!r}")
        object.__setattr__(self, "readonly_dirs", tuple(Path(d) for d in self.readonly_dirs))
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "sandbox", Path(self.sandbox))

    @property
    def command(self) -> list[str]:
        """The argv actually exec'd: ``argv``, or ``/bin/sh -c argv[0]`` for shell commands."""
        if self.shell:
            return [SHELL, "-c", self.argv[0]]
        return list(self.argv)

    @property
    def stdout_path(self) -> Path:
        return self.sandbox / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.sandbox / "stderr"
