"""The ``view_frameworks`` and ``view_tasks`` ACLs on every endpoint that shows frameworks or tasks.

Two real master processes (``python -m master``) with HTTP basic authentication against a
credentials file: ``restricted`` (``permissive: false``; principals ``alice`` and ``bob`` may
view only their own user's frameworks and tasks, ``ops`` any, ``carol`` has no rule) and
``open`` (no ``view_*`` rule, permissive: everything shown). On each, a fake agent and real gRPC
schedulers make the same cluster: framework ``alice-fw`` (user alice) with tasks ``alice-run``,
``alice-done`` (finished) and ``alice-as-bob`` (``CommandInfo.user`` bob: hidden from alice,
who may not view bob's tasks, and from bob, who may not view alice's framework); ``bob-fw``
with ``bob-run`` and ``bob-done``; and the torn-down ``alice-old`` and ``bob-old``.

What is hidden is left out and the request still answers 200 (Mesos's ObjectApprovers), on
``/master/state`` and its other names, ``/master/frameworks``, ``/master/tasks``,
``/master/state-summary``, ``/master/roles``, the operator API's calls, its SUBSCRIBE stream,
and the web UI's pages. One module-scoped cluster; the clients run on a loop in a thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import pytest

from emporion.testing.child_processes import start_child
from master.auth.view import ViewAcls, task_user
from master.core.model import Executor, Task
from protos.acls import Acls, Action
from protos.resources import Resources
from protos.security import basic_header
from protos.v1 import mesos_pb2
from tests.integration.master.clients import Call, FakeAgent, Scheduler, wait_for

ROOT = Path(__file__).resolve().parents[3]
LINE = re.compile(r"Emporion master (\S+) listening on (\S+) \(http (\S+)\)$")
T = TypeVar("T")

SECRETS = {"alice": "a-secret", "bob": "b-secret", "ops": "o-secret", "carol": "c-secret"}
ANY = {"type": "ANY"}
ALLOW_ALL = [{"principals": ANY, "roles": ANY}]
RESTRICTED = {
    "permissive": False,
    "register_frameworks": ALLOW_ALL,
    "run_tasks": [{"principals": ANY, "users": ANY}],
    "register_agents": [{"principals": ANY, "agents": ANY}],
    "teardown_frameworks": [{"principals": ANY, "framework_principals": ANY}],
    "view_frameworks": [
        {"principals": {"values": ["alice"]}, "users": {"values": ["alice"]}},
        {"principals": {"values": ["bob"]}, "users": {"values": ["bob"]}},
        {"principals": {"values": ["ops"]}, "users": ANY},
    ],
    "view_tasks": [
        {"principals": {"values": ["alice"]}, "users": {"values": ["alice"]}},
        {"principals": {"values": ["bob"]}, "users": {"values": ["bob"]}},
        {"principals": {"values": ["ops"]}, "users": ANY},
    ],
}
OPEN = {"permissive": True}

ALICE_TASKS = {"alice-run", "alice-done"}
BOB_TASKS = {"bob-run", "bob-done"}
EVERY_TASK = ALICE_TASKS | BOB_TASKS | {"alice-as-bob"}
LATE = {"bob-new", "bob-live"}
"""The frameworks the stream tests register and tear down (left out of the other tests'
comparisons, whatever order the tests run in)."""
LATE_TASKS = {"bob-live-run", "bob-live-two"}


class Loop:
    """An asyncio loop in a thread, for the clients that must keep running between tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Cluster:
    """One master process and what was registered on it."""

    name: str
    process: subprocess.Popen[str]
    address: str
    http: str
    drain: threading.Thread
    agent: FakeAgent | None = None
    schedulers: dict[str, Scheduler] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    """Framework name -> id."""
    loop: Loop | None = None
    more_agents: list[FakeAgent] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{self.http}{path}"


def auth(principal: str) -> dict[str, str]:
    return {"Authorization": basic_header(principal, SECRETS[principal])}


def start_master(directory: Path, name: str, acls: dict[str, Any]) -> Cluster:
    """``python -m master`` with HTTP authentication and ``acls``; returns once it serves."""
    acls_file = directory / f"{name}-acls.json"
    acls_file.write_text(json.dumps(acls))
    log = (directory / f"{name}.log").open("wb")
    args = [sys.executable, "-m", "master", "--host", "127.0.0.1", "--port", "0"]
    args += ["--http-port", "0", "--registry", "memory", "--allocation-interval", "0.2"]
    args += ["--credentials", str(directory / "credentials.json"), "--acls", str(acls_file)]
    args += ["--authenticate-http-readonly", "--authenticate-http-readwrite"]
    with log:  # The child has its own copy.
        process = start_child(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        match = LINE.search(line.strip())
        if match:
            drain = threading.Thread(target=_drain, args=(process.stdout,), daemon=True)
            drain.start()
            return Cluster(name, process, match.group(2), match.group(3), drain)
    process.wait(10)
    raise RuntimeError(f"master {name} exited: {(directory / f'{name}.log').read_text()}")


def _drain(stream: IO[str]) -> None:
    with stream:
        for _ in stream:
            pass


def task(offer: mesos_pb2.Offer, task_id: str, user: str | None = None) -> mesos_pb2.TaskInfo:
    info = mesos_pb2.TaskInfo(name=task_id)
    info.task_id.value = task_id
    info.agent_id.CopyFrom(offer.agent_id)
    info.resources.extend(Resources.parse("cpus:0.5;mem:32").to_protos())
    info.command.value = "sleep 1000"
    if user is not None:
        info.command.user = user
    return info


async def framework(cluster: Cluster, name: str, user: str) -> Scheduler:
    scheduler = Scheduler(cluster.address)
    info = mesos_pb2.FrameworkInfo(user=user, name=name, principal=user, failover_timeout=3600)
    cluster.ids[name] = await scheduler.subscribe(info)
    cluster.schedulers[name] = scheduler
    return scheduler


async def launch(scheduler: Scheduler, tasks: list[tuple[str, str | None]]) -> None:
    await wait_for(lambda: bool(scheduler.offers()), "an offer")
    offer = scheduler.offers()[-1]
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    call.accept.filters.refuse_seconds = 0
    operation = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    operation.launch.task_infos.extend(task(offer, task_id, user) for task_id, user in tasks)
    await scheduler.call(call, "Accept")


async def report(cluster: Cluster, name: str, task_id: str, state: int) -> None:
    """The agent reports ``state`` of ``task_id``; the scheduler acknowledges it."""
    assert cluster.agent is not None
    scheduler = cluster.schedulers[name]
    seen = len(scheduler.updates(task_id))
    update_uuid = uuid.uuid4().bytes
    await cluster.agent.status_update(cluster.ids[name], task_id, state, update_uuid)
    await wait_for(lambda: len(scheduler.updates(task_id)) > seen, f"{task_id}'s update")
    ack = Call(type=Call.ACKNOWLEDGE)
    ack.acknowledge.agent_id.value = cluster.agent.agent_id
    ack.acknowledge.task_id.value = task_id
    ack.acknowledge.uuid = update_uuid
    await scheduler.call(ack, "Acknowledge")


async def populate(cluster: Cluster) -> None:
    """The cluster of the module docstring."""
    cluster.agent = FakeAgent(cluster.address)
    await cluster.agent.register("cpus:8;mem:4096")
    for name, user in (("alice-old", "alice"), ("bob-old", "bob")):
        old = await framework(cluster, name, user)
        await old.call(Call(type=Call.TEARDOWN), "Teardown")
    alice = await framework(cluster, "alice-fw", "alice")
    bob = await framework(cluster, "bob-fw", "bob")
    # The one agent is offered whole to one of them; what it leaves goes to the other (DRF).
    await wait_for(lambda: bool(alice.offers() or bob.offers()), "an offer")
    launches: dict[Scheduler, list[tuple[str, str | None]]] = {
        alice: [("alice-run", None), ("alice-done", None), ("alice-as-bob", "bob")],
        bob: [("bob-run", None), ("bob-done", None)],
    }
    first = alice if alice.offers() else bob
    await launch(first, launches.pop(first))
    [(second, tasks)] = launches.items()
    await launch(second, tasks)
    await wait_for(lambda: len(cluster.agent.of("run_task")) == 5, "five RunTasks")  # type: ignore[union-attr]
    for name, task_id in (
        ("alice-fw", "alice-run"),
        ("alice-fw", "alice-as-bob"),
        ("alice-fw", "alice-done"),
        ("bob-fw", "bob-run"),
        ("bob-fw", "bob-done"),
    ):
        await report(cluster, name, task_id, mesos_pb2.TASK_RUNNING)
    await report(cluster, "alice-fw", "alice-done", mesos_pb2.TASK_FINISHED)
    await report(cluster, "bob-fw", "bob-done", mesos_pb2.TASK_FINISHED)


async def close_clients(cluster: Cluster) -> None:
    for scheduler in cluster.schedulers.values():
        await scheduler.close()
    for agent in [*cluster.more_agents, *([cluster.agent] if cluster.agent else [])]:
        await agent.close()


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Cluster]]:
    directory = tmp_path_factory.mktemp("view-acls")
    (directory / "credentials.json").write_text(
        json.dumps({"credentials": [{"principal": p, "secret": s} for p, s in SECRETS.items()]})
    )
    loop = Loop()
    started: dict[str, Cluster] = {}
    try:
        for name, acls in (("restricted", RESTRICTED), ("open", OPEN)):
            started[name] = start_master(directory, name, acls)
            started[name].loop = loop

        async def both() -> None:
            await asyncio.gather(*(populate(c) for c in started.values()))

        loop.run(both())
        yield started
    finally:
        for cluster in started.values():
            try:
                loop.run(close_clients(cluster), timeout=10)
            finally:
                cluster.process.kill()
                cluster.process.wait(10)
                cluster.drain.join(10)
        loop.close()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=15) as client:
        yield client


def get(http: httpx.Client, cluster: Cluster, path: str, principal: str) -> Any:
    response = http.get(cluster.url(path), headers=auth(principal))
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def operator(http: httpx.Client, cluster: Cluster, body: dict[str, Any], principal: str) -> Any:
    response = http.post(
        cluster.url("/api/v1"),
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **auth(principal)},
    )
    assert response.status_code == 200, f"{body}: {response.status_code} {response.text}"
    return response.json()


def v0_view(document: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """Framework names, completed framework names and task ids of a v0 document."""
    names = {fw["name"] for fw in document["frameworks"]} - LATE
    completed = {fw["name"] for fw in document["completed_frameworks"]} - LATE
    tasks = {
        t["id"]
        for fw in document["frameworks"] + document["completed_frameworks"]
        if fw["name"] not in LATE
        for kind in ("tasks", "unreachable_tasks", "completed_tasks")
        for t in fw[kind]
    }
    return names, completed, tasks


WHO_SEES = {
    # principal -> (frameworks, completed frameworks, tasks)
    "alice": ({"alice-fw"}, {"alice-old"}, ALICE_TASKS),
    "bob": ({"bob-fw"}, {"bob-old"}, BOB_TASKS),
    "ops": ({"alice-fw", "bob-fw"}, {"alice-old", "bob-old"}, EVERY_TASK),
    "carol": (set(), set(), set()),
}


@pytest.mark.parametrize("principal", sorted(WHO_SEES))
def test_master_state_leaves_out_what_the_principal_may_not_view(
    clusters: dict[str, Cluster], http: httpx.Client, principal: str
) -> None:
    cluster = clusters["restricted"]
    expected = WHO_SEES[principal]
    for path in ("/master/state", "/state", "/master/state.json"):
        document = get(http, cluster, path, principal)
        assert v0_view(document) == expected, path
        # Agents are not covered by the view ACLs.
        assert cluster.agent is not None
        assert cluster.agent.agent_id in {a["id"] for a in document["slaves"]}
    frameworks = get(http, cluster, "/master/frameworks", principal)
    assert v0_view(frameworks) == expected
    tasks = get(http, cluster, "/master/tasks", principal)["tasks"]
    assert {t["id"] for t in tasks} - LATE_TASKS == expected[2]
    # A framework the principal may not view is absent even when asked for by id.
    bob_fw = cluster.ids["bob-fw"]
    one = get(http, cluster, f"/master/frameworks?framework_id={bob_fw}", principal)
    assert [fw["name"] for fw in one["frameworks"]] == (
        ["bob-fw"] if "bob-fw" in expected[0] else []
    )


def test_state_summary_counts_only_what_is_visible(
    clusters: dict[str, Cluster], http: httpx.Client
) -> None:
    cluster = clusters["restricted"]
    alice = get(http, cluster, "/master/state-summary", "alice")
    assert [
        (fw["name"], fw["TASK_RUNNING"], fw["TASK_FINISHED"]) for fw in alice["frameworks"]
    ] == [("alice-fw", 1, 1)]
    assert cluster.agent is not None
    [agent] = [a for a in alice["slaves"] if a["id"] == cluster.agent.agent_id]
    assert (agent["TASK_RUNNING"], agent["TASK_FINISHED"]) == (1, 1)
    assert agent["framework_ids"] == [cluster.ids["alice-fw"]]
    ops = get(http, cluster, "/master/state-summary", "ops")
    counts = {fw["name"]: (fw["TASK_RUNNING"], fw["TASK_FINISHED"]) for fw in ops["frameworks"]}
    assert counts == {"alice-fw": (2, 1), "bob-fw": (1, 1)}
    [agent] = [a for a in ops["slaves"] if a["id"] == cluster.agent.agent_id]
    assert agent["TASK_RUNNING"] == 3
    carol = get(http, cluster, "/master/state-summary", "carol")
    assert carol["frameworks"] == []
    assert [a["TASK_RUNNING"] + a["TASK_FINISHED"] for a in carol["slaves"]] == [0] * len(
        carol["slaves"]
    )
    roles = get(http, cluster, "/master/roles", "alice")["roles"]
    assert [r["frameworks"] for r in roles if r["name"] == "*"] == [[cluster.ids["alice-fw"]]]


def v1_tasks(response: dict[str, Any], late: bool = False) -> set[str]:
    """The task ids of a GET_TASKS response (without the stream tests' unless ``late``)."""
    return {
        t["task_id"]["value"]
        for kind in ("tasks", "unreachable_tasks", "completed_tasks")
        for t in response[kind]
    } - (set() if late else LATE_TASKS)


@pytest.mark.parametrize("principal", sorted(WHO_SEES))
def test_operator_calls_leave_out_what_the_principal_may_not_view(
    clusters: dict[str, Cluster], http: httpx.Client, principal: str
) -> None:
    cluster = clusters["restricted"]
    frameworks, completed, tasks = WHO_SEES[principal]
    state = operator(http, cluster, {"type": "GET_STATE"}, principal)["get_state"]
    assert v1_tasks(state["get_tasks"]) == tasks
    listed = state["get_frameworks"]
    assert {f["framework_info"]["name"] for f in listed["frameworks"]} - LATE == frameworks
    assert {f["framework_info"]["name"] for f in listed["completed_frameworks"]} - LATE == completed
    assert state["get_agents"]["agents"]  # Agents are not covered by the view ACLs.
    got = operator(http, cluster, {"type": "GET_TASKS"}, principal)["get_tasks"]
    assert v1_tasks(got) == tasks
    # Paged: the total counts only what may be viewed.
    paged = operator(http, cluster, {"type": "GET_TASKS", "get_tasks": {"limit": 1}}, principal)[
        "get_tasks"
    ]
    assert paged["total"] == len(v1_tasks(got, late=True))
    assert len(v1_tasks(paged)) == min(1, len(tasks))
    got_frameworks = operator(
        http,
        cluster,
        {"type": "GET_FRAMEWORKS", "get_frameworks": {"include_completed": False}},
        principal,
    )["get_frameworks"]
    assert got_frameworks["total"] == len(frameworks)
    # A framework's summary counts only the tasks the principal may view.
    counts = {
        f["framework_info"]["name"]: (f["summary"]["tasks"], f["summary"]["completed_tasks"])
        for f in got_frameworks["frameworks"]
    }
    expected_counts = {
        "alice": {"alice-fw": ({"TASK_RUNNING": 1}, 1)},
        "bob": {"bob-fw": ({"TASK_RUNNING": 1}, 1)},
        "ops": {"alice-fw": ({"TASK_RUNNING": 2}, 1), "bob-fw": ({"TASK_RUNNING": 1}, 1)},
        "carol": {},
    }
    assert counts == expected_counts[principal]
    offers = operator(http, cluster, {"type": "GET_OFFERS"}, principal)["get_offers"]
    shown = {cluster.ids[name] for name in frameworks}
    assert {o["framework_id"]["value"] for o in offers["offers"]} <= shown
    roles = operator(http, cluster, {"type": "GET_ROLES"}, principal)["get_roles"]["roles"]
    assert {f["value"] for r in roles for f in r["frameworks"]} == shown


def test_an_explanation_of_a_hidden_framework_is_not_found(
    clusters: dict[str, Cluster], http: httpx.Client
) -> None:
    cluster = clusters["restricted"]
    body = {
        "type": "GET_EXPLANATION",
        "get_explanation": {"framework_id": {"value": cluster.ids["bob-fw"]}},
    }
    response = http.post(
        cluster.url("/api/v1"),
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **auth("alice")},
    )
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"get_explanation.framework_id: framework '{cluster.ids['bob-fw']}'"
        " is not registered"
    }
    assert operator(http, cluster, body, "bob")["type"] == "GET_EXPLANATION"


def test_without_view_rules_everything_is_shown(
    clusters: dict[str, Cluster], http: httpx.Client
) -> None:
    cluster = clusters["open"]
    for principal in ("alice", "carol"):
        assert v0_view(get(http, cluster, "/master/state", principal)) == WHO_SEES["ops"]
        got = operator(http, cluster, {"type": "GET_TASKS"}, principal)["get_tasks"]
        assert v1_tasks(got) == EVERY_TASK


def test_ui_pages_show_only_what_the_principal_may_view(
    clusters: dict[str, Cluster], http: httpx.Client
) -> None:
    cluster = clusters["restricted"]
    page = http.get(cluster.url("/ui/tasks"), headers=auth("alice"))
    assert page.status_code == 200
    assert "alice-run" in page.text
    for hidden in ("bob-run", "alice-as-bob", "bob-done"):
        assert hidden not in page.text
    everything = http.get(cluster.url("/ui/tasks"), headers=auth("ops")).text
    assert all(task_id in everything for task_id in EVERY_TASK)
    frameworks = http.get(cluster.url("/ui/frameworks"), headers=auth("alice")).text
    assert "alice-fw" in frameworks
    assert "bob-fw" not in frameworks
    bob_fw = cluster.ids["bob-fw"]
    assert (
        http.get(cluster.url(f"/ui/frameworks/{bob_fw}"), headers=auth("alice")).status_code == 404
    )
    hidden_task = http.get(cluster.url(f"/ui/tasks/{bob_fw}/bob-run"), headers=auth("alice"))
    assert hidden_task.status_code == 404
    assert (
        http.get(cluster.url(f"/ui/tasks/{bob_fw}/bob-run"), headers=auth("bob")).status_code == 200
    )


class RecordIO:
    """Reads a RecordIO stream of JSON records (``<length>\\n<json>``)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def __next__(self) -> dict[str, Any]:
        while True:
            head, newline, rest = self.buffer.partition(b"\n")
            if newline and len(rest) >= int(head):
                self.buffer = rest[int(head) :]
                record: dict[str, Any] = json.loads(rest[: int(head)])
                return record
            self.buffer += next(self.chunks)


def mentions(event: dict[str, Any], needles: list[str]) -> bool:
    text = json.dumps(event)
    return any(needle in text for needle in needles)


def test_an_event_stream_tells_nothing_about_frameworks_the_subscriber_may_not_view(
    clusters: dict[str, Cluster], http: httpx.Client
) -> None:
    cluster = clusters["restricted"]
    body = json.dumps({"type": "SUBSCRIBE"})
    headers = {"Content-Type": "application/json"}
    bob_fw = cluster.ids["bob-fw"]
    secrets = [bob_fw, "alice-as-bob", "bob-run"]
    with (
        http.stream(
            "POST", cluster.url("/api/v1"), content=body, headers={**headers, **auth("alice")}
        ) as alice,
        http.stream(
            "POST", cluster.url("/api/v1"), content=body, headers={**headers, **auth("ops")}
        ) as ops,
    ):
        assert alice.status_code == 200
        alice_events, ops_events = RecordIO(alice.iter_bytes()), RecordIO(ops.iter_bytes())
        subscribed = next(alice_events)
        assert subscribed["type"] == "SUBSCRIBED"
        assert v1_tasks(subscribed["subscribed"]["get_state"]["get_tasks"]) == ALICE_TASKS
        assert not mentions(subscribed, secrets)
        assert next(ops_events)["type"] == "SUBSCRIBED"

        async def updates() -> None:
            # Bob's framework and task first, alice's last: once alice's stream has hers, it
            # would have had bob's before it.
            bob = await framework(cluster, "bob-new", "bob")
            await report(cluster, "bob-fw", "bob-run", mesos_pb2.TASK_RUNNING)
            await report(cluster, "alice-fw", "alice-as-bob", mesos_pb2.TASK_RUNNING)
            await bob.call(Call(type=Call.TEARDOWN), "Teardown")
            await report(cluster, "alice-fw", "alice-run", mesos_pb2.TASK_RUNNING)

        assert cluster.loop is not None
        cluster.loop.run(updates())
        seen: list[dict[str, Any]] = []
        while True:
            event = next(alice_events)
            seen.append(event)
            if event["type"] == "TASK_UPDATED" and "alice-run" in json.dumps(event):
                break
        assert not [e for e in seen if mentions(e, [*secrets, cluster.ids["bob-new"]])], seen
        # The same changes reach a subscriber who may view them.
        told: list[dict[str, Any]] = []
        while not any(e["type"] == "TASK_UPDATED" and "alice-run" in json.dumps(e) for e in told):
            told.append(next(ops_events))
        kinds = {(e["type"], mentions(e, [bob_fw, cluster.ids["bob-new"]])) for e in told}
        assert {("FRAMEWORK_ADDED", True), ("TASK_UPDATED", True)} <= kinds


class ServerSentEvents:
    """Reads ``text/event-stream``: (event, data) pairs, comments skipped."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        kind = ""
        for line in self.lines:
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                yield kind, json.loads(line.removeprefix("data: "))


def collect_until_agents(
    events: Iterator[tuple[str, dict[str, Any]]], into: list[dict[str, Any]]
) -> None:
    """Keep batches until one tells of a changed agent (the test's last change)."""
    for kind, data in events:
        if kind == "batch":
            into.append(data)
            if "agents" in data:
                return


def test_the_ui_live_stream_tells_nothing_about_what_the_viewer_may_not_view(
    clusters: dict[str, Cluster], http: httpx.Client
) -> None:
    cluster = clusters["restricted"]
    assert cluster.loop is not None
    agent = cluster.agent
    assert agent is not None

    async def bob_live() -> Scheduler:
        live = await framework(cluster, "bob-live", "bob")
        # The older frameworks hold every offer: they refuse them, for bob-live's.
        for name in ("alice-fw", "bob-fw"):
            offers = await asyncio.to_thread(_offers_of, http, cluster, name)
            if offers:
                decline = Call(type=Call.DECLINE)
                decline.decline.offer_ids.extend(mesos_pb2.OfferID(value=o) for o in offers)
                decline.decline.filters.refuse_seconds = 3600
                await cluster.schedulers[name].call(decline, "Decline")
        await launch(live, [("bob-live-run", None)])
        await wait_for(lambda: len(agent.of("run_task")) == 6, "the sixth RunTask")
        await report(cluster, "bob-live", "bob-live-run", mesos_pb2.TASK_RUNNING)
        return live

    live = cluster.loop.run(bob_live())
    live_id, alice_fw = cluster.ids["bob-live"], cluster.ids["alice-fw"]
    # Alice's page could post any key: bob-live-run's is refused her, not ops.
    watch = {
        "tasks": [
            [live_id, "bob-live-run", "TASK_RUNNING"],
            [alice_fw, "alice-run", "TASK_RUNNING"],
        ],
        "frameworks": [live_id, alice_fw],
    }
    with (
        http.stream("GET", cluster.url("/ui/events"), headers=auth("alice")) as alice_stream,
        http.stream("GET", cluster.url("/ui/events"), headers=auth("ops")) as ops_stream,
    ):
        told: dict[str, list[dict[str, Any]]] = {"alice": [], "ops": []}
        readers = []
        for who, stream in (("alice", alice_stream), ("ops", ops_stream)):
            events = iter(ServerSentEvents(stream.iter_lines()))
            kind, hello = next(events)
            assert kind == "hello"
            posted = http.post(
                cluster.url(f"/ui/watch/{hello['viewer']}"),
                content=json.dumps(watch),
                headers=auth(who),
            )
            assert posted.status_code == 200, posted.text
            reader = threading.Thread(target=collect_until_agents, args=(events, told[who]))
            reader.start()
            readers.append(reader)

        async def changes() -> None:
            await launch(live, [("bob-live-two", None)])
            await wait_for(lambda: len(agent.of("run_task")) == 7, "the seventh RunTask")
            await report(cluster, "bob-live", "bob-live-two", mesos_pb2.TASK_FINISHED)
            await report(cluster, "bob-live", "bob-live-run", mesos_pb2.TASK_FINISHED)
            await live.call(Call(type=Call.TEARDOWN), "Teardown")
            while live_id in await asyncio.to_thread(_live_frameworks, http, cluster):
                await asyncio.sleep(0.05)  # The teardown is not applied yet.
            # Last, a change every viewer is told of: the readers stop there.
            late = FakeAgent(cluster.address)
            cluster.more_agents.append(late)
            await late.register("cpus:1;mem:64", hostname="late-host")

        cluster.loop.run(changes())
        for reader in readers:
            reader.join(60)
            assert not reader.is_alive()
    ops_text, alice_text = json.dumps(told["ops"]), json.dumps(told["alice"])
    assert json.dumps([live_id, "bob-live-run", "TASK_FINISHED"]) in ops_text
    assert any(live_id in batch.get("frameworks", []) for batch in told["ops"])
    assert any(batch.get("new_tasks") for batch in told["ops"])
    assert live_id not in alice_text
    assert "bob-live" not in alice_text
    assert not any(batch.get("new_tasks") for batch in told["alice"])
    assert any("metrics" in batch for batch in told["alice"])  # She was told of changes.


def _live_frameworks(http: httpx.Client, cluster: Cluster) -> set[str]:
    response = http.get(cluster.url("/master/frameworks"), headers=auth("ops"))
    return {fw["id"] for fw in response.json()["frameworks"]}


def _offers_of(http: httpx.Client, cluster: Cluster, name: str) -> list[str]:
    body = {
        "type": "GET_OFFERS",
        "get_offers": {"framework_id": {"value": cluster.ids[name]}},
    }
    offers = operator(http, cluster, body, "ops")["get_offers"]["offers"]
    return [o["id"]["value"] for o in offers]


def emporion(cluster: Cluster, principal: str, *args: str) -> Any:
    """``python -m emporion ARGS --json`` as ``principal`` (basic authentication)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "EMPORION_SDK_PRINCIPAL": principal,
        "EMPORION_SDK_SECRET": SECRETS[principal],
    }
    done = subprocess.run(
        [sys.executable, "-m", "emporion", *args, "--master", f"http://{cluster.http}", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_cli_lists_what_the_principal_may_view(clusters: dict[str, Cluster]) -> None:
    cluster = clusters["restricted"]
    for principal in ("alice", "ops"):
        tasks = {t["task_id"]["value"] for t in emporion(cluster, principal, "tasks", "--all")}
        assert tasks - LATE_TASKS == WHO_SEES[principal][2]
        listed = emporion(cluster, principal, "frameworks")["frameworks"]
        assert {f["framework_info"]["name"] for f in listed} - LATE == WHO_SEES[principal][0]


# -- the approver on its own (no cluster) ---------------------------------------------------


def test_nothing_is_filtered_without_restricting_view_rules() -> None:
    """``Acls.is_unrestricted``: the views then get None and do no per-object work."""
    view = [{"principals": ANY, "users": ANY}]
    cases: list[tuple[dict[str, Any], bool]] = [
        ({}, True),
        ({"permissive": False}, False),
        ({"permissive": False, "view_frameworks": view, "view_tasks": view}, True),
        ({"view_frameworks": [{"principals": {"values": ["a"]}, "users": ANY}]}, False),
        ({"view_tasks": [{"principals": ANY, "users": {"type": "NONE"}}]}, False),
    ]
    for document, unrestricted in cases:
        views = ViewAcls(Acls.parse(document))
        assert views.unrestricted is unrestricted, document
        assert (views.approver("someone") is None) is unrestricted, document
    assert Acls.parse({"permissive": False}).is_unrestricted(Action.RUN_TASKS) is False
    # Per principal, whether the object matters: ops's rule is ANY users, alice's names some,
    # carol has none (permissive false decides).
    restricted = Acls.parse(RESTRICTED)
    decisions = {p: restricted.decision_for_any(Action.VIEW_TASKS, p) for p in SECRETS}
    assert decisions == {"ops": True, "alice": None, "bob": None, "carol": False}


def test_a_task_is_viewed_as_the_user_it_runs_as() -> None:
    """``CommandInfo.user``, else its executor's, else the framework's (as ``run_tasks``)."""
    own = mesos_pb2.TaskInfo(name="t")
    as_bob = mesos_pb2.TaskInfo(name="t")
    as_bob.command.user = "bob"
    executor_as_bob = mesos_pb2.TaskInfo(name="t")
    executor_as_bob.executor.command.user = "bob"
    resources = Resources.parse("cpus:1")
    for info, user in ((own, "alice"), (as_bob, "bob"), (executor_as_bob, "bob"), (None, "alice")):
        task = Task("t", "f", "a", None, "*", resources, info=info)
        assert task_user(task, "alice") == user
    approver = ViewAcls(Acls.parse(RESTRICTED)).approver("alice")
    assert approver is not None
    alice_fw = mesos_pb2.FrameworkInfo(user="alice", name="a")
    bob_fw = mesos_pb2.FrameworkInfo(user="bob", name="b")
    assert approver.can_view_task(Task("t", "f", "a", None, "*", resources, info=own), alice_fw)
    assert not approver.can_view_task(
        Task("t", "f", "a", None, "*", resources, info=as_bob), alice_fw
    )
    # Her own user's task in a framework she may not view stays hidden.
    assert not approver.can_view_task(Task("t", "f", "a", None, "*", resources, info=own), bob_fw)
    # An executor is viewed as a task of its framework, run as its command's user.
    executor = Executor("e", "f", "a", "*", resources, info=mesos_pb2.ExecutorInfo())
    assert approver.can_view_executor(executor, alice_fw)
    assert executor.info is not None
    executor.info.command.user = "bob"
    assert not approver.can_view_executor(executor, alice_fw)
