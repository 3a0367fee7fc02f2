"""OperatorApi: one operator call (Mesos's v1 ``master.Call`` in JSON) in, its response out.

``POST /api/v1`` (:mod:`.router`) and the web UI (in-process) both go through
:meth:`OperatorApi.call`. Read-only calls are pure functions of the leading state machine
(:mod:`master.core.operator_views`); the steering calls go to the master's one state owner
through ``operate`` (the runtime carries their effects out), as every other input does.

Which master answers: GET_HEALTH, GET_VERSION, GET_FLAGS and GET_METRICS every master answers
for itself; every other call raises NotLeadingError on a follower (the app answers 307 to the
leader, or 503).

What a call shows of frameworks, tasks, executors and offers is what the request's principal
may see (``visibility``: the ``view_frameworks`` / ``view_tasks`` ACLs, :mod:`master.auth.view`);
the rest is left out, as Mesos leaves it out, never refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from master.core import CallError, Effect, ErrorCode, Master, metrics_snapshot
from master.core.errors import shown
from master.core.faults import CoreFaultError
from master.core.history import MAX_STATUSES
from master.core.model import AgentPhase
from master.core.operator_json import Visibility, proto_json
from master.core.operator_views import (
    AgentQuery,
    FrameworkQuery,
    OfferQuery,
    TaskQuery,
    framework_visibility,
    get_agents,
    get_executors,
    get_explanation,
    get_frameworks,
    get_offers,
    get_quota,
    get_roles,
    get_state,
    get_tasks,
    get_utilization,
    get_weights,
)
from master.core.steering import QuotaChange
from master.http.leadership import NotLeadingError
from master.http.operator.events import OperatorEvents
from master.http.operator.parse import (
    PAGE_KEYS,
    OperatorCallError,
    bad,
    boolean,
    check_keys,
    id_value,
    integer,
    number,
    obj,
    page,
    text,
)
from master.http.view import MasterView
from protos.mesos_json import flags_json as config_flags
from protos.v1 import mesos_pb2

__all__ = ["EVERY_MASTER_CALLS", "Operate", "OperatorApi", "config_flags"]

JSON = dict[str, Any]

Operate = Callable[[Callable[[Master, float], list[Effect]]], None]
"""Runs one steering input on the master's state owner and carries its effects out (raises
CallError as the input does, NotLeadingError when the master does not lead)."""

EVERY_MASTER_CALLS = frozenset({"GET_HEALTH", "GET_VERSION", "GET_FLAGS", "GET_METRICS"})
"""Calls a master answers whether it leads or not."""

_STATUS = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.FAILED_PRECONDITION: 409,
}

_TASK_ORDER = ("launch", "id", "name", "state", "updated")
_AGENT_ORDER = ("id", "hostname", "registered_time", "cpus", "mem", "disk", "gpus")
_FRAMEWORK_ORDER = ("registered", "id", "name")
_OFFER_ORDER = ("created", "id", "agent_id", "framework_id")
_TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")
_PHASES = {phase.value: phase for phase in AgentPhase}
ANY_PHASE = "any"
"""GET_AGENTS's ``phase`` for agents in every phase (without ``phase``: the registered ones, as
Mesos answers)."""


class OperatorApi:
    """OperatorApi answers operator calls for one master process (see the module docstring).

    ``events`` is the live event hub (SUBSCRIBE). ``operate`` runs steering inputs (None: the
    steering calls answer 503). ``flags`` are this master's flags for GET_FLAGS.
    ``visibility`` gives what the principal of the call being served may see (None: all).
    """

    def __init__(
        self,
        view: MasterView,
        *,
        clock: Callable[[], float] = time.time,
        operate: Operate | None = None,
        flags: Mapping[str, str] | None = None,
        visibility: Callable[[], Visibility | None] = lambda: None,
    ) -> None:
        self.view = view
        self.visibility = visibility
        self.clock = clock
        self._operate = operate
        self._flags = dict(flags) if flags is not None else None
        self.events = OperatorEvents(view, clock=clock)
        self.authorize: Callable[[str, JSON, Master], None] | None = None
        """Checks a call against the ACLs before it runs (raises OperatorCallError 403);
        set by the master when it has ``--acls`` (:mod:`master.auth`)."""
        self._calls: dict[str, Callable[[Master, JSON, str], JSON | None]] = {
            "GET_MASTER": self._get_master,
            "GET_STATE": self._get_state,
            "GET_TASKS": self._get_tasks,
            "GET_AGENTS": self._get_agents,
            "GET_FRAMEWORKS": self._get_frameworks,
            "GET_EXECUTORS": lambda m, p, w: get_executors(m, self.visibility()),
            "GET_ROLES": lambda m, p, w: get_roles(m, self.visibility()),
            "GET_WEIGHTS": lambda m, p, w: get_weights(m),
            "GET_QUOTA": lambda m, p, w: get_quota(m),
            "GET_OFFERS": self._get_offers,
            "GET_EXPLANATION": self._get_explanation,
            "GET_UTILIZATION": self._get_utilization,
            "TEARDOWN": self._teardown,
            "UPDATE_WEIGHTS": self._update_weights,
            "UPDATE_QUOTA": self._update_quota,
            "MARK_AGENT_GONE": self._mark_agent_gone,
        }

    @property
    def call_types(self) -> list[str]:
        """Every call this API takes."""
        return sorted({*self._calls, *EVERY_MASTER_CALLS, "SUBSCRIBE"})

    # -- entry --------------------------------------------------------------------------------

    def read_type(self, body: object) -> tuple[str, JSON]:
        """The call's type and payload object (``{}`` if absent); 400 for a malformed call."""
        call = obj(body, "call")
        kind = call.get("type")
        if not isinstance(kind, str):
            raise bad(f"type: must be the name of a call, got {shown(kind)}")
        if kind not in self.call_types:
            raise bad(f"type: unknown call {shown(kind)} (known: {', '.join(self.call_types)})")
        key = kind.lower()
        check_keys(call, ("type", key), "call")
        payload = call.get(key)
        return kind, {} if payload is None else obj(payload, key)

    def call(self, body: object) -> JSON | None:
        """Run one call: its response object, or None for a steering call that succeeded.

        Raises OperatorCallError (400/404/409/503) or NotLeadingError. Must run on the
        master's event loop (between two inputs of the state machine).
        """
        kind, payload = self.read_type(body)
        key = kind.lower()
        result: JSON | None
        if kind in EVERY_MASTER_CALLS:
            check_keys(payload, (), key)
            result = self._every_master(kind)
        elif kind == "SUBSCRIBE":
            raise bad("type: SUBSCRIBE opens an event stream: POST it to /api/v1 over HTTP")
        else:
            master = self.view.leading_master()
            if master is None:
                raise NotLeadingError
            if self.authorize is not None:
                self.authorize(kind, payload, master)
            result = self._calls[kind](master, payload, key)
        if result is None:
            return None
        return {"type": kind, key: result}

    def _every_master(self, kind: str) -> JSON:
        master = self.view.leading_master()
        if kind == "GET_HEALTH":
            return {"healthy": True}
        if kind == "GET_VERSION":
            return {"version_info": {"version": self.view.version}}
        if kind == "GET_FLAGS":
            flags = self._flags
            if flags is None:
                flags = config_flags(master.state.config) if master is not None else {}
            return {"flags": [{"name": n, "value": flags[n]} for n in sorted(flags)]}
        metrics = metrics_snapshot(master, now=self.clock(), start_time=self.view.start_time)
        return {"metrics": [{"name": n, "value": metrics[n]} for n in sorted(metrics)]}

    # -- read-only calls ----------------------------------------------------------------------

    def _get_master(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(payload, (), where)
        out: JSON = {
            "master_info": proto_json(master.master_info),
            "start_time": self.view.start_time,
        }
        if self.view.elected_time is not None:
            out["elected_time"] = self.view.elected_time
        return out

    def _get_state(self, master: Master, payload: JSON, where: str) -> JSON:
        return get_state(master, self.visibility())

    def _get_tasks(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(
            payload,
            (
                *PAGE_KEYS,
                *("task_id", "query", "state", "framework_id", "agent_id", "include"),
                "max_statuses",
            ),
            where,
        )
        state_name = text(payload, "state", where)
        task_state = None
        if state_name is not None:
            if state_name not in mesos_pb2.TaskState.DESCRIPTOR.values_by_name:
                raise bad(f"{where}.state: unknown task state {shown(state_name)}")
            task_state = mesos_pb2.TaskState.Value(state_name)
        include = payload.get("include", list(_TASK_LISTS))
        if not isinstance(include, list) or any(i not in _TASK_LISTS for i in include):
            raise bad(
                f"{where}.include: must be a list of {', '.join(_TASK_LISTS)}, got {shown(include)}"
            )
        query = TaskQuery(
            page=page(payload or None, where, _TASK_ORDER),
            task_id=id_value(payload, "task_id", where),
            query=text(payload, "query", where),
            state=task_state,
            framework_id=id_value(payload, "framework_id", where),
            agent_id=id_value(payload, "agent_id", where),
            include=frozenset(include),
            max_statuses=integer(payload, "max_statuses", where, 0, MAX_STATUSES),
        )
        return get_tasks(master, query, self.visibility())

    def _get_agents(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(payload, (*PAGE_KEYS, "agent_id", "query", "phase"), where)
        phase_name = text(payload, "phase", where)
        query = AgentQuery(
            page=page(payload or None, where, _AGENT_ORDER),
            agent_id=id_value(payload, "agent_id", where),
            query=text(payload, "query", where),
        )
        if phase_name == ANY_PHASE:  # Emporion's: every agent the master knows, lost ones too.
            query = AgentQuery(query.page, query.agent_id, query.query, frozenset(AgentPhase))
        elif phase_name is not None:
            phase = _PHASES.get(phase_name)
            if phase is None:
                raise bad(
                    f"{where}.phase: must be one of {', '.join(sorted([*_PHASES, ANY_PHASE]))},"
                    f" got {shown(phase_name)}"
                )
            query = AgentQuery(query.page, query.agent_id, query.query, frozenset({phase}))
        elif query.agent_id is not None:  # One agent by id: whatever its phase.
            query = AgentQuery(query.page, query.agent_id, query.query, frozenset(AgentPhase))
        return get_agents(master, query)

    def _get_frameworks(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(
            payload, (*PAGE_KEYS, "framework_id", "query", "role", "include_completed"), where
        )
        query = FrameworkQuery(
            page=page(payload or None, where, _FRAMEWORK_ORDER),
            framework_id=id_value(payload, "framework_id", where),
            query=text(payload, "query", where),
            role=text(payload, "role", where),
            include_completed=boolean(payload, "include_completed", where, True),
        )
        return get_frameworks(master, query, self.visibility())

    def _get_offers(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(payload, (*PAGE_KEYS, "framework_id", "agent_id"), where)
        query = OfferQuery(
            page=page(payload or None, where, _OFFER_ORDER),
            framework_id=id_value(payload, "framework_id", where),
            agent_id=id_value(payload, "agent_id", where),
        )
        return get_offers(master, query, self.visibility())

    def _get_explanation(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(payload, ("framework_id", "role"), where)
        framework_id = id_value(payload, "framework_id", where)
        role = text(payload, "role", where)
        if (framework_id is None) == (role is None):
            raise bad(f"{where}: exactly one of framework_id and role is required")
        state = master.state
        visible = self.visibility()
        can_see = framework_visibility(master, visible) if visible is not None else None
        if framework_id is not None:
            # A framework the caller may not see is "not registered", as an unknown one.
            hidden = can_see is not None and not can_see(framework_id)
            if framework_id not in state.frameworks or hidden:
                gone = framework_id in state.completed and not hidden
                raise OperatorCallError(
                    404,
                    f"{where}.framework_id: framework {shown(framework_id)} "
                    + ("was torn down" if gone else "is not registered"),
                )
            ids = [framework_id]
        else:
            ids = [
                f
                for f, fw in state.frameworks.items()
                if role in fw.roles and (can_see is None or can_see(f))
            ]
        return get_explanation(master, ids, self.clock())

    def _get_utilization(self, master: Master, payload: JSON, where: str) -> JSON:
        check_keys(payload, ("since",), where)
        since = number(payload, "since", where)
        return get_utilization(master.state.history, master, self.clock(), since)

    # -- steering -----------------------------------------------------------------------------

    def _steer(self, action: Callable[[Master, float], list[Effect]]) -> None:
        if self._operate is None:
            raise OperatorCallError(503, "this master serves no steering calls")
        try:
            self._operate(action)
        except CallError as error:
            raise OperatorCallError(_STATUS.get(error.code, 400), error.message) from None
        except CoreFaultError as fault:
            raise OperatorCallError(500, str(fault)) from None

    def _teardown(self, master: Master, payload: JSON, where: str) -> None:
        check_keys(payload, ("framework_id",), where)
        framework_id = id_value(payload, "framework_id", where)
        if not framework_id:
            raise bad(f"{where}.framework_id: is required")
        self._steer(lambda m, now: m.teardown_framework(framework_id, now))

    def _update_weights(self, master: Master, payload: JSON, where: str) -> None:
        check_keys(payload, ("weight_infos",), where)
        infos = payload.get("weight_infos")
        if not isinstance(infos, list) or not infos:
            raise bad(f"{where}.weight_infos: must be a non-empty list, got {shown(infos)}")
        weights: list[tuple[str, float]] = []
        for i, item in enumerate(infos):
            at = f"{where}.weight_infos[{i}]"
            info = obj(item, at)
            check_keys(info, ("role", "weight"), at)
            role = text(info, "role", at)
            weight = number(info, "weight", at)
            if role is None:
                raise bad(f"{at}.role: is required")
            if weight is None:
                raise bad(f"{at}.weight: is required")
            weights.append((role, weight))
        self._steer(lambda m, now: m.update_weights(weights, now))

    def _update_quota(self, master: Master, payload: JSON, where: str) -> None:
        check_keys(payload, ("force", "quota_configs"), where)
        force = boolean(payload, "force", where, False)
        configs = payload.get("quota_configs")
        if not isinstance(configs, list) or not configs:
            raise bad(f"{where}.quota_configs: must be a non-empty list, got {shown(configs)}")
        changes = []
        for i, item in enumerate(configs):
            at = f"{where}.quota_configs[{i}]"
            config = obj(item, at)
            check_keys(config, ("role", "guarantees", "limits"), at)
            role = text(config, "role", at)
            if role is None:
                raise bad(f"{at}.role: is required")
            changes.append(
                QuotaChange(
                    role,
                    _amounts(config.get("guarantees"), f"{at}.guarantees"),
                    _amounts(config.get("limits"), f"{at}.limits"),
                )
            )
        self._steer(lambda m, now: m.update_quota(changes, now, force=force))

    def _mark_agent_gone(self, master: Master, payload: JSON, where: str) -> None:
        check_keys(payload, ("agent_id",), where)
        agent_id = id_value(payload, "agent_id", where)
        if not agent_id:
            raise bad(f"{where}.agent_id: is required")
        self._steer(lambda m, now: m.mark_agent_gone(agent_id, now))


def _amounts(value: object, where: str) -> dict[str, float]:
    """A quota map: ``{"cpus": {"value": 1.0}}`` -> ``{"cpus": 1.0}``."""
    if value is None:
        return {}
    amounts = obj(value, where)
    out: dict[str, float] = {}
    for name, scalar in amounts.items():
        at = f"{where}.{name}"
        entry = obj(scalar, at)
        check_keys(entry, ("value",), at)
        amount = number(entry, "value", at)
        if amount is None or amount < 0:
            raise bad(f"{at}.value: must be a number >= 0, got {shown(entry.get('value'))}")
        out[name] = amount
    return out
