"""The master's authentication and authorization at its edges (gRPC servicers, HTTP app).

Why at the edge: the state machine (:mod:`master.core`) stays sans-I/O and free of secrets; every
check here reads only what a call carries (its ``authorization`` metadata or header, its TLS
peer) and what the core already knows (a framework's ``FrameworkInfo.principal``, which is
checkpointed in the registry and so survives failovers). A call refused here never reaches the
core, so it changes nothing.

* Authentication (``--authenticate-frameworks``, ``--authenticate-agents``): the principal is the
  one proved by ``authorization`` (:mod:`protos.security`), else, under mutual TLS, the subject
  CN of the verified client certificate. Refused: ``UNAUTHENTICATED``.
* Authorization (``--acls``, :mod:`protos.acls`): ``register_frameworks`` (each role),
  ``run_tasks`` (each launched task's user), ``register_agents``; and ownership: a framework id
  belongs to the principal in its FrameworkInfo, an agent id to the principal that registered
  it (both kept in the registry, so a new leader knows them). Refused: ``PERMISSION_DENIED``
  naming the principal and the action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from master.config import MasterConfig
from master.core import Master
from protos.acls import PRIVILEGED_USERS, Acls, Action, refusal
from protos.http_auth import authenticate_request
from protos.security import (
    AuthenticationError,
    Authenticator,
    TlsConfig,
    load_credentials,
)
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

__all__ = ["AuthenticationError", "MasterSecurity", "PermissionDeniedError", "task_info_user"]


class PermissionDeniedError(Exception):
    """An authenticated (or anonymous) principal may not do what it asked (403)."""

    def __init__(self, principal: str | None, action: str, detail: str) -> None:
        super().__init__(refusal(principal, action, detail))


def framework_roles(info: mesos_pb2.FrameworkInfo) -> list[str]:
    """The roles a FrameworkInfo asks for (``roles``, else ``role``, else ``*``)."""
    return list(info.roles) or [info.role or "*"]


def task_info_user(task: mesos_pb2.TaskInfo, framework_user: str) -> str:
    """The user a task runs as: its CommandInfo's, else its executor's, else its framework's
    (what ``run_tasks`` authorizes and ``view_tasks`` is asked about)."""
    if task.command.HasField("user"):
        return task.command.user
    if task.executor.command.HasField("user"):
        return task.executor.command.user
    return framework_user


def _launched_users(call: scheduler_pb2.Call, default_user: str) -> Iterable[str]:
    """The user of every task an ACCEPT launches (CommandInfo.user, else the framework's)."""
    launch = mesos_pb2.Offer.Operation.LAUNCH
    launch_group = mesos_pb2.Offer.Operation.LAUNCH_GROUP
    for operation in call.accept.operations:
        if operation.type == launch:
            tasks: Iterable[mesos_pb2.TaskInfo] = operation.launch.task_infos
        elif operation.type == launch_group:
            tasks = operation.launch_group.task_group.tasks
            executor = operation.launch_group.executor
            if executor.command.HasField("user"):
                yield executor.command.user
        else:
            continue
        for task in tasks:
            yield task_info_user(task, default_user)


@dataclass(frozen=True, slots=True)
class _Flags:
    frameworks: bool
    agents: bool
    http_readonly: bool
    http_readwrite: bool


class MasterSecurity:
    """What a master checks at its edges; built once from its config (files read at start).

    Raises SecurityConfigError (a ValueError naming the file) for unreadable or bad files.
    """

    def __init__(self, config: MasterConfig) -> None:
        self.flags = _Flags(
            config.authenticate_frameworks,
            config.authenticate_agents,
            config.authenticate_http_readonly,
            config.authenticate_http_readwrite,
        )
        secrets = load_credentials(config.credentials) if config.credentials else {}
        self.authenticator = Authenticator(secrets)
        self.acls = Acls.load(config.acls) if config.acls is not None else Acls()
        self._acls_given = config.acls is not None
        self.tls: TlsConfig | None = None
        if config.tls_cert is not None or config.tls_key is not None:
            self.tls = TlsConfig(
                config.tls_cert, config.tls_key, config.tls_ca, config.tls_require_client_cert
            )
            self.tls.check_server()

    @property
    def scheme(self) -> str:
        """``https`` when the master serves TLS, else ``http``."""
        return "https" if self.tls is not None else "http"

    def authenticate(
        self, authorization: str | None, peer_cn: str | None, required: bool
    ) -> str | None:
        """The principal of a request (None: anonymous, allowed only when not ``required``).

        A request that sends credentials has them checked even when not required: wrong
        credentials are never taken as anonymous.
        """
        return authenticate_request(self.authenticator, authorization, peer_cn, required)

    # -- frameworks --

    def check_subscribe(
        self,
        principal: str | None,
        call: scheduler_pb2.Call,
        known: mesos_pb2.FrameworkInfo | None,
    ) -> None:
        """SUBSCRIBE: the info's principal must be the caller's; each role must be allowed by
        ``register_frameworks``; an existing framework id only by its owner (``known``: the
        info the master holds for the id the call names, None if it names none or an unknown
        one)."""
        info = call.subscribe.framework_info
        if principal is not None and info.HasField("principal") and info.principal != principal:
            raise PermissionDeniedError(
                principal,
                "register_frameworks",
                f"framework_info.principal {info.principal!r} is not the authenticated one",
            )
        claimed = principal if principal is not None else (info.principal or None)
        for role in framework_roles(info):
            if not self.acls.allows(Action.REGISTER_FRAMEWORKS, claimed, role):
                raise PermissionDeniedError(
                    claimed, "register_frameworks", f"role {role!r} is not allowed"
                )
        if known is not None and self._owner_differs(known, principal):
            raise PermissionDeniedError(
                principal,
                "register_frameworks",
                f"framework {known.id.value} belongs to principal"
                f" {known.principal or None!r}: only its owner may subscribe with its id",
            )

    def _owner_differs(self, known: mesos_pb2.FrameworkInfo, principal: str | None) -> bool:
        if not self.flags.frameworks:
            return False  # Principals are only claimed, not proved: nothing to hold them to.
        owner = known.principal if known.HasField("principal") and known.principal else None
        return owner != principal

    def check_call(
        self,
        principal: str | None,
        call: scheduler_pb2.Call,
        known: mesos_pb2.FrameworkInfo | None,
    ) -> None:
        """A call of a subscribed framework: only its owner may make it; an ACCEPT's launches
        need ``run_tasks`` for each task's user."""
        if known is None:
            return  # Unknown id: the core refuses it with its own precise error.
        if self._owner_differs(known, principal):
            raise PermissionDeniedError(
                principal,
                f"call {scheduler_pb2.Call.Type.Name(call.type)}",
                f"framework {known.id.value} belongs to principal {known.principal or None!r}",
            )
        if call.type == scheduler_pb2.Call.ACCEPT:
            subject = principal if principal is not None else (known.principal or None)
            for user in _launched_users(call, known.user):
                self._check_run_as(subject, user)

    def _check_run_as(self, subject: str | None, user: str) -> None:
        """``run_tasks`` for one task's user; with ``--acls`` given, root needs a rule that
        allows it (:data:`protos.acls.PRIVILEGED_USERS`)."""
        if self._acls_given and user in PRIVILEGED_USERS:
            if not self.acls.allows_explicitly(Action.RUN_TASKS, subject, user):
                raise PermissionDeniedError(
                    subject,
                    "run_tasks",
                    f"tasks may not run as user {user!r}: running as {user} needs a run_tasks"
                    " rule that allows it ('permissive' does not cover it)",
                )
        elif not self.acls.allows(Action.RUN_TASKS, subject, user):
            raise PermissionDeniedError(subject, "run_tasks", f"tasks may not run as user {user!r}")

    # -- agents --

    def check_agent(
        self,
        principal: str | None,
        message: agent_internal_pb2.AgentMessage,
        owner: str | None = None,
    ) -> None:
        """An agent's first message: ``register_agents``, and a reregistration under a known
        id only from the principal that owns it (``owner``: the principal the master holds for
        the id the message reregisters, kept in the registry; None: none recorded, and the
        reregistration claims it)."""
        if not self.acls.allows(Action.REGISTER_AGENTS, principal):
            raise PermissionDeniedError(principal, "register_agents", "refused by the ACLs")
        if message.WhichOneof("payload") != "reregister_agent" or not self.flags.agents:
            return  # Without --authenticate-agents nothing proves who an agent is.
        if owner is not None and owner != principal:
            agent_id = message.reregister_agent.agent_info.id.value
            raise PermissionDeniedError(
                principal,
                "register_agents",
                f"agent {agent_id} is held by principal {owner!r}: only it may reregister"
                " that agent",
            )

    def check_operator(
        self, principal: str | None, kind: str, payload: Mapping[str, Any], master: Master
    ) -> None:
        """An operator call: TEARDOWN needs ``teardown_frameworks`` on the framework's
        principal, UPDATE_WEIGHTS ``update_weights`` and UPDATE_QUOTA ``update_quotas`` on
        each role it changes."""
        if kind == "TEARDOWN":
            framework_id = payload.get("framework_id")
            value = framework_id.get("value") if isinstance(framework_id, Mapping) else None
            fw = master.framework(value) if isinstance(value, str) else None
            owner = (fw.info.principal or None) if fw is not None else None
            self.authorize(Action.TEARDOWN_FRAMEWORKS, principal, owner)
        elif kind in ("UPDATE_WEIGHTS", "UPDATE_QUOTA"):
            action = Action.UPDATE_WEIGHTS if kind == "UPDATE_WEIGHTS" else Action.UPDATE_QUOTAS
            items = payload.get("weight_infos" if kind == "UPDATE_WEIGHTS" else "quota_configs")
            for item in items if isinstance(items, list) else ():
                role = item.get("role") if isinstance(item, Mapping) else None
                if isinstance(role, str):
                    self.authorize(action, principal, role)

    def authorize(self, action: Action, principal: str | None, value: str | None) -> None:
        """PermissionDeniedError unless the ACLs allow ``action`` on ``value``."""
        if not self.acls.allows(action, principal, value):
            shown = f" on {value!r}" if value is not None else ""
            raise PermissionDeniedError(principal, action.value, f"refused by the ACLs{shown}")
