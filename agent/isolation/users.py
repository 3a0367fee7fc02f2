"""Which user a task runs as: Mesos's ``switch_user``, and the agent-side rule for root.

A task runs as ``CommandInfo.user``, else ``FrameworkInfo.user`` (the core picks which), else
the agent's own user. With ``switch_user`` (on by default when the agent runs as root) the
helper switches to that user, the sandbox is handed to it, and a task that would end up as
root (uid 0, whatever the name) is refused unless root tasks are allowed. Without
``switch_user`` every task runs as the agent's user, whatever it names (Mesos's
``--no-switch_user``).

The refusal happens before anything is fetched or created, so a refused task leaves nothing
behind and fails with the reason in one line. ``authorize`` is where an ACL engine plugs in
later (Mesos's ``run_tasks``: principal -> users): it is asked about every user a task would
run as, after the root rule, and its refusal is reported the same way.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["UserPolicy", "UserRefusedError", "agent_user_name"]


class UserRefusedError(Exception):
    """The task may not run as the user it names (unknown user, root not allowed, ACL)."""


def agent_user_name() -> str:
    """The name of the agent's own user (its uid as text when it has no passwd entry)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclass(frozen=True)
class UserPolicy:
    """How the agent decides the user of each task.

    ``switch_user`` None means on when the agent runs as root, as Mesos. ``authorize(user)``
    returns None to allow, or the reason for refusing (an ACL engine's verdict).
    """

    switch_user: bool | None = None
    allow_root_tasks: bool = True
    authorize: Callable[[str], str | None] | None = field(default=None, compare=False)

    @property
    def switching(self) -> bool:
        """Whether tasks run as the user they name (on by default when the agent is root)."""
        if self.switch_user is None:
            return os.geteuid() == 0
        return self.switch_user

    def user_for(self, requested: str | None) -> str | None:
        """The user to run a task as (None: the agent's own user, no switch); raises
        :class:`UserRefusedError` naming the user and the rule.

        An agent that is not root cannot switch: a task naming another user then fails at
        launch (``running as user ... needs root``), as before.
        """
        if not self.switching:
            name, uid, chosen = agent_user_name(), os.geteuid(), None
        elif os.geteuid() != 0:
            return requested
        else:
            name = requested or agent_user_name()
            try:
                uid = pwd.getpwnam(name).pw_uid if requested else os.geteuid()
            except KeyError:
                raise UserRefusedError(f"user {name!r} does not exist on this agent") from None
            chosen = requested
        if uid == 0 and not self.allow_root_tasks:
            raise UserRefusedError(
                f"refusing to run the task as root (user {name!r}, uid 0): the agent allows no"
                " root tasks (--no-allow-root-tasks); name an unprivileged user in"
                " FrameworkInfo.user or CommandInfo.user"
            )
        if self.authorize is not None and (reason := self.authorize(name)) is not None:
            raise UserRefusedError(f"not authorized to run tasks as user {name!r}: {reason}")
        return chosen
