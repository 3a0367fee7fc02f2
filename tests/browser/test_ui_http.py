"""The web UI over plain HTTP (no browser): a real in-process master on port 0, a real gRPC
agent and scheduler; pages, refusals, operator actions, the live stream, assets and /docs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from protos.v1 import mesos_pb2
from tests.integration.master.clients import (
    FakeAgent,
    Scheduler,
    quick_config,
    running_master,
    wait_for,
)
from tests.integration.master_http.test_standalone import launch

HTMX = {"HX-Request": "true"}


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """The (event, data) pairs of an SSE response."""
    kind = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


async def next_event(stream: AsyncIterator[tuple[str, Any]], kind: str, test: Any) -> Any:
    """The data of the next ``kind`` event for which ``test(data)`` holds (within 30 s)."""

    async def find() -> Any:
        async for found, data in stream:
            if found == kind and test(data):
                return data
        raise AssertionError(f"the stream ended before a matching {kind}")

    return await asyncio.wait_for(find(), 30)


def run(check: Any) -> None:
    """Run ``check(client, agent, scheduler, framework_id, agent_id)`` against a master with
    one agent and one framework whose task ``t1`` runs."""

    async def main() -> None:
        async with running_master(quick_config(http_port=0)) as server:
            agent, scheduler = FakeAgent(server.address), Scheduler(server.address)
            try:
                agent_id = await agent.register("cpus:2;mem:1024", hostname="node-1")
                info = mesos_pb2.FrameworkInfo(user="u", name="web", role="eng")
                framework_id = await scheduler.subscribe(info)
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                await scheduler.call(launch(scheduler.offers()[0], "t1"), "Accept")
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                await agent.status_update(
                    framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
                )
                await wait_for(lambda: bool(scheduler.updates("t1")), "the update")
                base = f"http://{server.http_address}"
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    await check(client, agent, scheduler, framework_id, agent_id)
            finally:
                await scheduler.close()
                await agent.close()

    # On a thread of its own: a browser test module's Playwright may hold the main thread's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


def test_every_page_renders_and_bad_requests_are_refused_precisely() -> None:
    async def check(client: httpx.AsyncClient, _a: Any, _s: Any, fid: str, aid: str) -> None:
        for path in (
            "/",
            "/ui/agents",
            f"/ui/agents/{aid}",
            "/ui/frameworks",
            f"/ui/frameworks/{fid}",
            "/ui/tasks?q=t&state=TASK_RUNNING",
            f"/ui/tasks/{fid}/t1",
            "/ui/roles",
            "/ui/offers",
        ):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"].startswith("text/html")
        page = (await client.get("/ui/tasks?state=TASK_RUNNING")).text
        assert 'data-task-id="t1"' in page
        assert 'data-state="TASK_RUNNING"' in page
        # htmx asks for the table alone.
        table = await client.get("/ui/tasks?q=t1", headers=HTMX)
        assert table.text.lstrip().startswith("<table")
        # ... but the whole page when it restores a view from the browser's history.
        restore = {**HTMX, "HX-History-Restore-Request": "true"}
        whole = await client.get("/ui/tasks?q=t1", headers=restore)
        assert whole.text.lstrip().startswith("<!doctype html>")

        refused = {
            "/ui/tasks?state=RUNNING": (400, "query parameter &#39;state&#39;"),
            "/ui/agents?limit=0": (400, "query parameter &#39;limit&#39;"),
            "/ui/agents?sort=height": (400, "query parameter &#39;sort&#39;"),
            f"/ui/tasks/{fid}/nope": (404, "no task &#39;nope&#39;"),
            "/ui/agents/nope": (404, "no agent &#39;nope&#39;"),
            "/ui/frameworks/nope": (404, "no framework &#39;nope&#39;"),
            f"/ui/sandbox/{fid}/t1/files?path=../../etc": (400, "inside the sandbox"),
            "/ui/static/%2E%2E/app.py": (404, "no static file"),
            "/ui/static/nope.js": (404, "no static file"),
            "/ui/taskz": (404, "no page /ui/taskz"),
            "/ui/tasks/a/b/c/d": (404, "no page /ui/tasks/a/b/c/d"),
        }
        for path, (status, words) in refused.items():
            response = await client.get(path)
            assert response.status_code == status, (path, response.status_code, response.text)
            assert words in response.text, (path, response.text)
            assert response.headers["content-type"].startswith("text/html"), path
        assert (await client.get("/ui/taskz")).text.lstrip().startswith("<!doctype html>")

    run(check)


def test_operator_actions_need_the_ui_and_are_checked() -> None:
    async def check(client: httpx.AsyncClient, _a: Any, _s: Any, fid: str, _aid: str) -> None:
        forged = await client.post("/ui/roles/eng/weight", data={"weight": "2"})
        assert forged.status_code == 403
        bad = await client.post("/ui/roles/eng/weight", data={"weight": "heavy"}, headers=HTMX)
        assert bad.status_code == 400
        assert "field &#39;weight&#39; must be a number" in bad.text
        done = await client.post("/ui/roles/eng/weight", data={"weight": "2.5"}, headers=HTMX)
        assert done.status_code == 200, done.text
        weights = await client.get("/master/weights")
        assert weights.json() == [{"role": "eng", "weight": 2.5}]

        quota = {"guarantee_cpus": "1", "limit_cpus": "-1"}
        negative = await client.post("/ui/roles/eng/quota", data=quota, headers=HTMX)
        assert negative.status_code == 400
        assert "limit_cpus" in negative.text
        quota = {"guarantee_cpus": "0.5", "limit_cpus": "2"}
        assert (await client.post("/ui/roles/eng/quota", data=quota, headers=HTMX)).is_success
        roles = (await client.get("/master/roles")).json()["roles"]
        [eng] = [r for r in roles if r["name"] == "eng"]
        assert eng["quota"]["limit"] == {"cpus": 2.0}

        gone = await client.post("/ui/frameworks/nope/teardown", headers=HTMX)
        assert gone.status_code == 404
        torn = await client.post(f"/ui/frameworks/{fid}/teardown", headers=HTMX)
        assert torn.status_code == 200, torn.text
        page = await client.get(f"/ui/frameworks/{fid}")
        assert "torn down" in page.text.lower()

    run(check)


def test_the_live_stream_pushes_watched_tasks_and_gauges() -> None:
    async def check(client: httpx.AsyncClient, agent: Any, _s: Any, fid: str, _aid: str) -> None:
        async with client.stream("GET", "/ui/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            hello = await next_event(stream, "hello", lambda data: True)
            viewer = hello["viewer"]
            # The page was rendered while t1 was STAGING: the next batch corrects it.
            watched = {"tasks": [[fid, "t1", "TASK_STAGING"]], "agents": [], "frameworks": []}
            bad = await client.post(f"/ui/watch/{viewer}", json={"tasks": [["two", "ids"]]})
            assert bad.status_code == 400
            assert "field 'tasks' must hold lists of 3 strings" in bad.json()["detail"]
            posted = await client.post(f"/ui/watch/{viewer}", json=watched)
            assert posted.json() == {"watching": 1}
            batch = await next_event(stream, "batch", lambda data: "tasks" in data)
            assert batch["tasks"] == [[fid, "t1", "TASK_RUNNING"]]
            assert batch["metrics"]["master/tasks_running"] == 1

            await agent.status_update(fid, "t1", mesos_pb2.TASK_FINISHED, uuid.uuid4().bytes)
            batch = await next_event(stream, "batch", lambda data: "tasks" in data)
            assert batch["tasks"] == [[fid, "t1", "TASK_FINISHED"]]
            assert batch["metrics"]["master/tasks_running"] == 0
            assert batch["metrics"]["master/tasks_finished"] == 1

        # The stream closed: the master forgets the viewer (once it sees the disconnect).
        async def forgotten() -> None:
            while (await client.post(f"/ui/watch/{viewer}", json={})).status_code != 404:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(forgotten(), 30)

    run(check)


def test_assets_are_served_from_the_package_and_docs_need_no_cdn() -> None:
    async def check(client: httpx.AsyncClient, *_: Any) -> None:
        for path, kind in (
            ("/ui/static/htmx/htmx.min.js", "javascript"),
            ("/ui/static/uplot/uPlot.iife.min.js", "javascript"),
            ("/ui/static/emporion.css", "text/css"),
            ("/ui/static/swagger-ui/swagger-ui-bundle.js", "javascript"),
        ):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert kind in response.headers["content-type"], path
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "/ui/static/swagger-ui/swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        assert (await client.get("/redoc")).status_code == 404
        page = (await client.get("/")).text
        assert "http://" not in page.replace(str(client.base_url), "")
        assert "https://" not in page

    run(check)
