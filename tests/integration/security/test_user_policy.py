"""UserPolicy: which user a task runs as, and the refusals, against this host's passwd."""

from __future__ import annotations

import os

import pytest

from agent.isolation.users import UserPolicy, UserRefusedError, agent_user_name
from tests.integration.security.support import UNPRIVILEGED, has_user

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only a root agent switches users")


@as_root
def test_a_root_agent_switches_to_the_named_user() -> None:
    policy = UserPolicy()
    assert policy.switching
    assert policy.user_for(None) is None  # The agent's own user: nothing to switch.
    if has_user(UNPRIVILEGED):
        assert policy.user_for(UNPRIVILEGED) == UNPRIVILEGED
    with pytest.raises(
        UserRefusedError, match=r"^user 'no-such-user-x' does not exist on this agent$"
    ):
        policy.user_for("no-such-user-x")


@as_root
def test_root_tasks_are_refused_when_not_allowed_whatever_the_name() -> None:
    policy = UserPolicy(allow_root_tasks=False)
    for requested in (None, "root"):
        with pytest.raises(
            UserRefusedError, match=r"refusing to run the task as root \(user 'root', uid 0\)"
        ):
            policy.user_for(requested)
    if has_user(UNPRIVILEGED):
        assert policy.user_for(UNPRIVILEGED) == UNPRIVILEGED


def test_without_switching_every_task_runs_as_the_agent() -> None:
    policy = UserPolicy(switch_user=False)
    assert policy.user_for("anyone-at-all") is None
    if os.geteuid() == 0:
        with pytest.raises(UserRefusedError, match="uid 0"):
            UserPolicy(switch_user=False, allow_root_tasks=False).user_for("anyone-at-all")


def test_an_authorizer_is_asked_about_every_user() -> None:
    asked: list[str] = []

    def authorize(user: str) -> str | None:
        asked.append(user)
        return "principal 'p' may run tasks only as 'svc'"

    policy = UserPolicy(switch_user=False, authorize=authorize)
    with pytest.raises(UserRefusedError) as refused:
        policy.user_for(None)
    assert str(refused.value) == (
        f"not authorized to run tasks as user {agent_user_name()!r}:"
        " principal 'p' may run tasks only as 'svc'"
    )
    assert asked == [agent_user_name()]
    assert UserPolicy(switch_user=False, authorize=lambda _user: None).user_for(None) is None
