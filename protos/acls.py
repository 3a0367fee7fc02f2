"""Mesos's local authorizer: ``--acls`` JSON, rules tried in order, the first match decides.

A file looks like Mesos's::

    {"permissive": false,
     "register_frameworks": [{"principals": {"values": ["etl"]}, "roles": {"values": ["etl"]}}],
     "run_tasks": [{"principals": {"type": "ANY"}, "users": {"values": ["nobody"]}}]}

Each rule has a subject (``principals``) and an object entity (the key of :data:`OBJECTS`);
an entity is ``{"values": [...]}``, ``{"type": "ANY"}`` or ``{"type": "NONE"}``. A rule matches
a request when its principals match the request's principal (``ANY`` also matches a request with
no principal, ``NONE`` only those) and its object matches; a matching rule allows, unless its
object is ``NONE``, which denies everything to the principals it names. With no matching rule
``permissive`` (default true, as Mesos) decides.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from protos.security import SecurityConfigError, _read_json

__all__ = ["OBJECTS", "PRIVILEGED_USERS", "Acls", "Action", "Entity", "refusal"]


class Action(enum.StrEnum):
    """An authorizable action (Mesos's ACL names)."""

    REGISTER_FRAMEWORKS = "register_frameworks"
    RUN_TASKS = "run_tasks"
    TEARDOWN_FRAMEWORKS = "teardown_frameworks"
    VIEW_FRAMEWORKS = "view_frameworks"
    VIEW_TASKS = "view_tasks"
    ACCESS_SANDBOXES = "access_sandboxes"
    UPDATE_WEIGHTS = "update_weights"
    UPDATE_QUOTAS = "update_quotas"
    REGISTER_AGENTS = "register_agents"


OBJECTS: Mapping[Action, str] = {
    Action.REGISTER_FRAMEWORKS: "roles",
    Action.RUN_TASKS: "users",
    Action.TEARDOWN_FRAMEWORKS: "framework_principals",
    Action.VIEW_FRAMEWORKS: "users",
    Action.VIEW_TASKS: "users",
    Action.ACCESS_SANDBOXES: "users",
    Action.UPDATE_WEIGHTS: "roles",
    Action.UPDATE_QUOTAS: "roles",
    Action.REGISTER_AGENTS: "agents",
}
"""The object entity's key of each action's rules (as in Mesos's ``acls.proto``)."""


def refusal(principal: str | None, action: str, detail: str) -> str:
    """How a refusal reads, at the master and at the agent (403 / PERMISSION_DENIED):
    ``principal 'x' is not authorized to ACTION: DETAIL``."""
    who = f"principal {principal!r}" if principal is not None else "an anonymous client"
    return f"{who} is not authorized to {action}: {detail}"


PRIVILEGED_USERS = frozenset({"root"})
"""Users a task runs as only under a ``run_tasks`` rule that allows it by name or by ANY: with
``--acls`` given, ``permissive`` does not extend to them (a safer default than Mesos's, where
a permissive file lets any framework run tasks as root)."""


@dataclass(frozen=True, slots=True)
class Entity:
    """``ANY``, ``NONE`` or a set of values."""

    kind: str  # "ANY", "NONE" or "SOME"
    values: frozenset[str] = frozenset()

    def matches(self, value: str | None) -> bool:
        """Whether ``value`` (None: the request has none) is one this entity names."""
        if self.kind in ("ANY", "NONE"):
            return True
        return value is not None and value in self.values

    @classmethod
    def parse(cls, raw: object, where: str) -> Entity:
        if not isinstance(raw, Mapping):
            raise SecurityConfigError(
                f'{where}: expected {{"values": [...]}} or {{"type": "ANY"|"NONE"}}'
            )
        unknown = set(raw) - {"values", "type"}
        if unknown:
            raise SecurityConfigError(f"{where}: unknown keys {sorted(unknown)}")
        if "values" in raw:
            values = raw["values"]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise SecurityConfigError(f"{where}: 'values' must be a list of strings")
            return cls("SOME", frozenset(values))
        kind = raw.get("type")
        if kind not in ("ANY", "NONE"):
            raise SecurityConfigError(f"{where}: 'type' must be ANY or NONE, got {kind!r}")
        return cls(str(kind))


@dataclass(frozen=True, slots=True)
class _Rule:
    principals: Entity
    objects: Entity

    def decide(self, principal: str | None, value: str | None) -> bool | None:
        """True/False when this rule matches, None when it does not."""
        subject = self.principals
        if subject.kind == "NONE":
            if principal is not None:
                return None
        elif not subject.matches(principal):
            return None
        if not self.objects.matches(value):
            return None
        return self.objects.kind != "NONE"


class Acls:
    """Acls decides whether a principal may perform an action on an object."""

    def __init__(
        self, rules: Mapping[Action, Sequence[_Rule]] | None = None, permissive: bool = True
    ) -> None:
        self._rules = dict(rules or {})
        self.permissive = permissive

    @classmethod
    def load(cls, path: Path) -> Acls:
        """Parse an ``--acls`` file; SecurityConfigError names the file and the bad rule."""
        document = _read_json(path, "--acls")
        if not isinstance(document, Mapping):
            raise SecurityConfigError(f"--acls {path}: expected a JSON object")
        return cls.parse(document, f"--acls {path}")

    @classmethod
    def parse(cls, document: Mapping[str, object], where: str = "--acls") -> Acls:
        permissive = document.get("permissive", True)
        if not isinstance(permissive, bool):
            raise SecurityConfigError(f"{where}: 'permissive' must be true or false")
        known = {a.value for a in Action}
        rules: dict[Action, list[_Rule]] = {}
        for key, raw in document.items():
            if key == "permissive":
                continue
            if key not in known:
                raise SecurityConfigError(
                    f"{where}: unknown action {key!r} (known: {', '.join(sorted(known))})"
                )
            action = Action(key)
            if not isinstance(raw, list):
                raise SecurityConfigError(f"{where}: {key} must be a list of rules")
            parsed = rules.setdefault(action, [])
            for index, item in enumerate(raw):
                at = f"{where}: {key}[{index}]"
                if not isinstance(item, Mapping):
                    raise SecurityConfigError(f"{at}: expected an object")
                object_key = OBJECTS[action]
                if set(item) != {"principals", object_key}:
                    raise SecurityConfigError(
                        f"{at}: expected exactly 'principals' and {object_key!r},"
                        f" got {sorted(item)}"
                    )
                parsed.append(
                    _Rule(
                        Entity.parse(item["principals"], f"{at}.principals"),
                        Entity.parse(item[object_key], f"{at}.{object_key}"),
                    )
                )
        return cls(rules, permissive)

    def allows(self, action: Action, principal: str | None, value: str | None = None) -> bool:
        """Whether ``principal`` may do ``action`` on ``value`` (first matching rule)."""
        for rule in self._rules.get(action, ()):
            decision = rule.decide(principal, value)
            if decision is not None:
                return decision
        return self.permissive

    def allows_explicitly(self, action: Action, principal: str | None, value: str) -> bool:
        """Whether a rule allows ``principal`` to do ``action`` on ``value``: as :meth:`allows`,
        but with no matching rule the answer is no, whatever ``permissive`` says (what running
        tasks as ``root`` needs, see :data:`PRIVILEGED_USERS`)."""
        for rule in self._rules.get(action, ()):
            decision = rule.decide(principal, value)
            if decision is not None:
                return decision
        return False

    def is_unrestricted(self, action: Action) -> bool:
        """Whether every principal may do ``action`` on every object: no rule names the action
        and the ACLs are permissive, or the first rule is ANY principals on ANY objects.

        Callers skip their per-object checks then: the common case, so that ``view_*``
        filtering costs nothing without ``view_*`` rules."""
        rules = self._rules.get(action)
        if not rules:
            return self.permissive
        first = rules[0]
        # A first rule of ANY principals on ANY objects matches every request, and allows.
        return first.principals.kind == "ANY" and first.objects.kind == "ANY"

    def decision_for_any(self, action: Action, principal: str | None) -> bool | None:
        """What ``principal`` is answered for ``action`` whatever the object, when that does
        not depend on the object (its first matching rule names ANY or NONE objects, or none
        matches); None when it does. Lets a caller decide once for a whole list."""
        for rule in self._rules.get(action, ()):
            subject = rule.principals
            matches = principal is None if subject.kind == "NONE" else subject.matches(principal)
            if not matches:
                continue
            if rule.objects.kind == "SOME":
                return None
            return rule.objects.kind == "ANY"
        return self.permissive

    def allows_all(self, action: Action, principal: str | None, values: Sequence[str]) -> bool:
        """Whether ``principal`` may do ``action`` on every one of ``values``."""
        return all(self.allows(action, principal, value) for value in values)
