"""The master's v1 operator API (``POST /api/v1``) from the command line, and id lookups.

One :class:`OperatorClient` per command. Each call is one POST that follows a follower's 307 to
the leader (the body is sent again, as the operator API expects); after one redirect every
later call goes to the leader directly, so that the calls every master answers for itself
(GET_METRICS) are the leader's answers too. Leader-only calls come first for that reason.
Errors come back as :mod:`emporion.client.errors`: a connection failure or a 503 (no leader)
is UnreachableError, a 404 NotFoundError, a 400 UsageError, anything else the master refuses a
ClientError, each with the master's own ``detail``.

Task ids are unique within a framework only: :meth:`OperatorClient.find_task` looks one up in
every framework and asks for ``--framework`` when two frameworks have it. Frameworks are named
by id or, when exactly one has it, by name.
"""

from __future__ import annotations

from typing import Any

import httpx

from emporion.client.errors import ClientError, NotFoundError, UnreachableError, UsageError
from emporion.client.security import ClientSecurity
from protos.leader_info import format_address

__all__ = ["TASK_LISTS", "OperatorClient", "tasks_of"]

TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")
"""The lists of a GET_TASKS answer, in the order a table shows them."""

MAX_PAGE = 1000
"""The operator API's largest page (``limit``)."""


def tasks_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task of a ``get_tasks`` answer, live ones first."""
    return [task for key in TASK_LISTS for task in answer.get(key, [])]


class OperatorClient:
    """OperatorClient calls one master's operator API at ``http`` (``host:port``).

    ``given`` is the ``--master`` the user typed, named in messages.
    """

    def __init__(
        self,
        http: str,
        given: str,
        *,
        timeout: float = 15.0,
        security: ClientSecurity | None = None,
    ) -> None:
        self.http = http
        self.given = given
        safety = security or ClientSecurity()
        self.answered_by = http
        """``host:port`` of the HTTP API calls go to: the leader's, once a follower redirected
        a call there."""
        self._client = httpx.Client(
            base_url=f"{safety.scheme}://{http}",
            timeout=timeout,
            follow_redirects=True,
            **safety.httpx_options(),
        )

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> OperatorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to operator call ``body`` (``{}`` for a steering call's empty 200)."""
        try:
            response = self._client.post("/api/v1", json=body)
        except httpx.HTTPError as error:
            raise UnreachableError(self.given, _reason(error)) from None
        if response.history and response.url.port is not None:
            # A follower sent us to the leader: go there directly from now on (calls every
            # master answers, such as GET_METRICS, must come from the leader too).
            self.answered_by = format_address(response.url.host, response.url.port)
            self._client.base_url = httpx.URL(f"{response.url.scheme}://{self.answered_by}")
        if response.status_code == 200:
            return response.json() if response.content else {}
        detail = _detail(response)
        if response.status_code == 503:
            raise UnreachableError(self.given, detail)
        if response.status_code == 404:
            raise NotFoundError(detail)
        if response.status_code == 400:
            raise UsageError(detail)
        if response.status_code == 401:  # --authenticate-http-*: the CLI sends no credentials
            raise UsageError(f"the master at {self.given} asks for credentials: {detail}")
        raise ClientError(f"the master refused {body.get('type')}: {detail}")

    # -- reads ---------------------------------------------------------------------------------

    def master(self) -> dict[str, Any]:
        """GET_MASTER's answer: ``master_info``, ``start_time``, ``elected_time``."""
        answer: dict[str, Any] = self.call({"type": "GET_MASTER"})["get_master"]
        return answer

    def metrics(self) -> dict[str, float]:
        """GET_METRICS as ``{name: value}`` (every ``/metrics/snapshot`` figure)."""
        found = self.call({"type": "GET_METRICS"})["get_metrics"].get("metrics", [])
        return {item["name"]: float(item.get("value", 0.0)) for item in found}

    def agents(self, **filters: Any) -> dict[str, Any]:
        """GET_AGENTS's answer (``agents``, ``recovered_agents``, ``total``)."""
        answer: dict[str, Any] = self.call(
            {"type": "GET_AGENTS", "get_agents": {"limit": MAX_PAGE, **filters}}
        )["get_agents"]
        return answer

    def frameworks(self, **filters: Any) -> dict[str, Any]:
        """GET_FRAMEWORKS's answer (``frameworks``, ``completed_frameworks``, totals)."""
        answer: dict[str, Any] = self.call(
            {"type": "GET_FRAMEWORKS", "get_frameworks": {"limit": MAX_PAGE, **filters}}
        )["get_frameworks"]
        return answer

    def tasks(self, **filters: Any) -> dict[str, Any]:
        """GET_TASKS's answer (``tasks``, ``unreachable_tasks``, ``completed_tasks``, ``total``)."""
        answer: dict[str, Any] = self.call({"type": "GET_TASKS", "get_tasks": filters})["get_tasks"]
        return answer

    def explanation(self, framework_id: str) -> dict[str, Any]:
        """GET_EXPLANATION of one framework: ``cycle`` and ``explanations``."""
        answer: dict[str, Any] = self.call(
            {"type": "GET_EXPLANATION", "get_explanation": {"framework_id": framework_id}}
        )["get_explanation"]
        return answer

    def teardown(self, framework_id: str) -> None:
        """TEARDOWN: end the framework and kill its tasks."""
        self.call({"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}})

    # -- lookups -------------------------------------------------------------------------------

    def find_framework(self, wanted: str, *, completed: bool = True) -> dict[str, Any]:
        """The framework whose id is ``wanted`` or, failing that, the one framework so named
        (a live one first, then a completed one).

        Completed frameworks count when ``completed``. NotFoundError names ``wanted``;
        UsageError lists the ids when several frameworks share the name.
        """
        answer = self.frameworks(include_completed=completed)
        every = [*answer.get("frameworks", []), *answer.get("completed_frameworks", [])]
        for framework in every:
            if framework_id(framework) == wanted:
                found: dict[str, Any] = framework
                return found
        # By name: a live framework first; a completed one when none lives (a finished run).
        for key in ("frameworks", "completed_frameworks"):
            named = [f for f in answer.get(key, []) if framework_name(f) == wanted]
            if len(named) == 1:
                only: dict[str, Any] = named[0]
                return only
            if named:
                ids = ", ".join(framework_id(f) for f in named)
                kind = "live" if key == "frameworks" else "completed"
                raise UsageError(
                    f"{len(named)} {kind} frameworks are named {wanted!r} ({ids}): give the id"
                )
        raise NotFoundError(f"no framework {wanted!r} is known to the master (by id or name)")

    def find_task(self, task_id: str, framework: str | None = None) -> dict[str, Any]:
        """The task ``task_id`` (of ``framework``, an id or name, when given), completed or not.

        NotFoundError names it; UsageError when several frameworks have a task of that id.
        """
        filters: dict[str, Any] = {"task_id": task_id, "limit": MAX_PAGE}
        if framework is not None:
            filters["framework_id"] = framework_id(self.find_framework(framework))
        found = tasks_of(self.tasks(**filters))
        if not found:
            where = f" in framework {framework!r}" if framework is not None else ""
            raise NotFoundError(f"no task {task_id!r}{where} is known to the master")
        owners = sorted({task["framework_id"]["value"] for task in found})
        if len(owners) > 1:
            raise UsageError(
                f"{len(owners)} frameworks have a task {task_id!r} ({', '.join(owners)}): "
                "give --framework"
            )
        return found[0]


def framework_id(framework: dict[str, Any]) -> str:
    """The id of an operator API framework object."""
    return str(framework.get("framework_info", {}).get("id", {}).get("value", ""))


def framework_name(framework: dict[str, Any]) -> str:
    """The name of an operator API framework object."""
    return str(framework.get("framework_info", {}).get("name", ""))


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return response.text.strip()


def _reason(error: httpx.HTTPError) -> str:
    """A connection failure in a few words: 'connection refused', 'timed out', ..."""
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return f"no answer in time ({text})" if str(error) else "no answer in time"
    if "Connection refused" in text:
        return "connection refused"
    return text
