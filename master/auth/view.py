"""What a reader of the master's state may see: the ``view_frameworks`` and ``view_tasks`` ACLs.

Mesos's model (``src/master/readonly_handler.cpp``, ``ObjectApprovers``): every endpoint that
shows frameworks, tasks or executors asks an approver of the request's principal about each
object, and **leaves out** what it refuses; the request still succeeds (200), so a reader
learns nothing from an error about what it may not see. The objects:

* a framework: ``view_frameworks`` on ``FrameworkInfo.user``;
* a task: ``view_tasks`` on its user (``CommandInfo.user``, else its executor's, else the
  framework's: the user it runs as, as ``run_tasks`` reads it), and its framework must be
  visible too (a hidden framework hides its tasks);
* an executor: as a task of its framework, on its command's user (Emporion has no
  ``view_executors`` rule: an executor is shown to whoever may see the tasks it would run).

Completed tasks and frameworks follow the same rules. Why a separate module: the endpoints
(``master.http``) call :class:`ViewAcls` and hand its approver to the views, which are pure
functions of the state (:mod:`master.core.operator_views`, :mod:`master.core.snapshot`) taking a
:class:`~master.core.operator_json.Visibility`.

Cost: with no ``view_*`` rule (and ``permissive`` true), or a first rule of ANY principals on
ANY users, nothing is filtered and :meth:`ViewAcls.approver` answers None, which the views take
as "show everything" (no per-object work at all). Otherwise each principal's approver is kept
and remembers its answer per user, so a request costs one dict lookup per object it walks;
the views skip a hidden framework's tasks whole, and take a visible framework's tasks whole
when the principal may view every user's tasks (``shows_every_task_of``): then a page of
GET_TASKS costs O(frameworks + page), as without rules, and only a ``view_tasks`` rule that
names users makes the tasks of visible frameworks be checked one by one.
"""

from __future__ import annotations

from master.auth import task_info_user
from master.auth.http import CURRENT_PRINCIPAL
from master.core.model import Executor, Task
from protos.acls import Acls, Action
from protos.v1 import mesos_pb2

__all__ = ["ViewAcls", "ViewApprover", "executor_user", "task_user"]

MAX_APPROVERS = 1024
"""Principals whose approvers are kept (more: the cache starts afresh; principals are the few
of the credentials file, or the subjects of client certificates)."""


def task_user(task: Task, framework_user: str) -> str:
    """The user ``task`` runs as: its CommandInfo's, else its executor's, else its
    framework's (a task learnt of from an agent, without its TaskInfo: the framework's)."""
    info = task.info
    return task_info_user(info, framework_user) if info is not None else framework_user


def executor_user(executor: Executor, framework_user: str) -> str:
    """The user ``executor`` runs as: its CommandInfo's, else its framework's."""
    info = executor.info
    if info is not None and info.command.HasField("user"):
        return info.command.user
    return framework_user


class ViewApprover:
    """ViewApprover says what one principal may see (a
    :class:`~master.core.operator_json.Visibility`); it remembers each answer per user."""

    __slots__ = ("_acls", "_framework_users", "_task_users", "_tasks_open", "principal")

    def __init__(self, acls: Acls, principal: str | None) -> None:
        self._acls = acls
        self.principal = principal
        self._tasks_open = acls.decision_for_any(Action.VIEW_TASKS, principal) is True
        """Whether this principal may view every user's tasks (then only frameworks count)."""
        self._framework_users: dict[str, bool] = {}
        self._task_users: dict[str, bool] = {}

    def _framework_user(self, user: str) -> bool:
        allowed = self._framework_users.get(user)
        if allowed is None:
            allowed = self._acls.allows(Action.VIEW_FRAMEWORKS, self.principal, user)
            self._framework_users[user] = allowed
        return allowed

    def _task_user(self, user: str) -> bool:
        if self._tasks_open:
            return True
        allowed = self._task_users.get(user)
        if allowed is None:
            allowed = self._acls.allows(Action.VIEW_TASKS, self.principal, user)
            self._task_users[user] = allowed
        return allowed

    def can_view_framework(self, info: mesos_pb2.FrameworkInfo) -> bool:
        """``view_frameworks`` on the framework's user."""
        return self._framework_user(info.user)

    def shows_every_task_of(self, info: mesos_pb2.FrameworkInfo) -> bool:
        """Whether every task of the framework may be viewed, whatever its user: a list of
        its tasks is then taken whole, with no check per task."""
        return self._tasks_open and self._framework_user(info.user)

    def can_view_task(self, task: Task, info: mesos_pb2.FrameworkInfo) -> bool:
        """``view_frameworks`` on its framework's user and ``view_tasks`` on its own."""
        return self._framework_user(info.user) and self._task_user(task_user(task, info.user))

    def can_view_executor(self, executor: Executor, info: mesos_pb2.FrameworkInfo) -> bool:
        """As a task of its framework, on the executor's user."""
        return self._framework_user(info.user) and self._task_user(
            executor_user(executor, info.user)
        )


class ViewAcls:
    """ViewAcls hands out the approver of a request's principal (see the module docstring).

    ``approver(principal)`` and ``current()`` answer None when every principal sees
    everything: callers pass that straight to the views.
    """

    def __init__(self, acls: Acls | None = None) -> None:
        self.acls = acls if acls is not None else Acls()
        self.unrestricted = self.acls.is_unrestricted(
            Action.VIEW_FRAMEWORKS
        ) and self.acls.is_unrestricted(Action.VIEW_TASKS)
        """Whether nothing is ever filtered."""
        self._approvers: dict[str | None, ViewApprover] = {}

    def approver(self, principal: str | None) -> ViewApprover | None:
        """What ``principal`` (None: anonymous) may see; None: everything."""
        if self.unrestricted:
            return None
        approver = self._approvers.get(principal)
        if approver is None:
            if len(self._approvers) >= MAX_APPROVERS:
                self._approvers.clear()
            approver = self._approvers[principal] = ViewApprover(self.acls, principal)
        return approver

    def current(self) -> ViewApprover | None:
        """The approver of the HTTP request being served (its principal, set by
        :class:`~master.auth.http.BasicAuthMiddleware`; anonymous without it)."""
        if self.unrestricted:
            return None
        return self.approver(CURRENT_PRINCIPAL.get())
