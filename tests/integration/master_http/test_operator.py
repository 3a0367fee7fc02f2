"""The operator API of a real master process with a real agent and a real framework.

``emporion.local_cluster`` starts ``python -m master`` and an agent (posix isolation); a
framework built on framework_sdk runs two tasks that exit with status 3 (the issue's opening
scenario). An operator subscribed over HTTP sees it happen live (RecordIO), and afterwards the
failure is still at the master: completed tasks with their statuses, the TASK_FAILED counter,
state-summary's counts, Prometheus's ``/metrics`` (the master's and the agent's).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from emporion.local_cluster import LocalCluster
from tests.integration.agent.conftest import needs_root

ROOT = Path(__file__).resolve().parents[3]
JSON = dict[str, Any]


def read_records(stream: httpx.Response, sink: list[JSON]) -> None:
    """Append every RecordIO record of ``stream`` to ``sink`` until it ends."""
    buffer = b""
    for chunk in stream.iter_bytes():
        buffer += chunk
        while b"\n" in buffer:
            size, _, rest = buffer.partition(b"\n")
            length = int(size)
            if len(rest) < length:
                break
            sink.append(json.loads(rest[:length]))
            buffer = rest[length:]


def subscribe(base: str, sink: list[JSON], errors: list[BaseException]) -> threading.Thread:
    """A thread reading ``SUBSCRIBE`` into ``sink`` (it ends when the master goes away)."""

    def run() -> None:
        try:
            with httpx.stream(
                "POST", f"{base}/api/v1", json={"type": "SUBSCRIBE"}, timeout=None
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"] == "application/recordio"
                assert stream.headers["message-content-type"] == "application/json"
                read_records(stream, sink)
        except httpx.HTTPError:
            pass  # The master stopped.
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="operator-subscriber", daemon=True)
    thread.start()
    return thread


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def operator_call(base: str, body: JSON) -> JSON:
    response = httpx.post(f"{base}/api/v1", json=body, timeout=10)
    assert response.status_code == 200, response.text
    result: JSON = response.json()
    return result


def test_a_failure_is_seen_live_and_leaves_a_trace(tmp_path: Path) -> None:
    with LocalCluster(agents=1, isolation="posix", work_dir=tmp_path) as cluster:
        base = f"http://{cluster.master_http_address}"

        def agents() -> list[JSON]:
            found: list[JSON] = operator_call(base, {"type": "GET_AGENTS"})["get_agents"]["agents"]
            return found

        wait_until(lambda: bool(agents()), "the agent's registration")
        events: list[JSON] = []
        errors: list[BaseException] = []
        reader = subscribe(base, events, errors)
        wait_until(lambda: bool(events) or bool(errors), "SUBSCRIBED")
        assert not errors
        assert events[0]["type"] == "SUBSCRIBED"
        assert events[0]["subscribed"]["get_state"]["get_agents"]["agents"]

        framework = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.integration.master_http.exiting_framework",
                "--master",
                str(cluster.master_address),
                "--tasks",
                "2",
                "--status",
                "3",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert framework.returncode == 0, framework.stdout + framework.stderr
        assert json.loads(framework.stdout.splitlines()[-1]) == {
            "exit-0": "TASK_FAILED",
            "exit-1": "TASK_FAILED",
        }

        def failed_updates() -> list[JSON]:
            return [
                e
                for e in events
                if e["type"] == "TASK_UPDATED" and e["task_updated"]["state"] == "TASK_FAILED"
            ]

        wait_until(lambda: len(failed_updates()) >= 2, "two TASK_UPDATED events to TASK_FAILED")
        kinds = [e["type"] for e in events]
        assert kinds.count("TASK_ADDED") == 2
        assert "FRAMEWORK_ADDED" in kinds

        tasks = operator_call(base, {"type": "GET_TASKS"})["get_tasks"]
        assert tasks["tasks"] == []
        assert sorted(t["task_id"]["value"] for t in tasks["completed_tasks"]) == [
            "exit-0",
            "exit-1",
        ]
        for task in tasks["completed_tasks"]:
            assert task["state"] == "TASK_FAILED"
            states = [s["state"] for s in task["statuses"]]
            assert states[0] == "TASK_STAGING"
            assert states[-1] == "TASK_FAILED"
            assert "TASK_RUNNING" in states
            assert task["statuses"][-1]["source"] in ("SOURCE_EXECUTOR", "SOURCE_AGENT")

        snapshot = httpx.get(f"{base}/metrics/snapshot").json()
        assert snapshot["master/tasks_failed"] == 2.0
        assert snapshot["master/tasks_finished"] == 0.0
        summary = httpx.get(f"{base}/master/state-summary").json()
        [agent] = summary["slaves"]
        assert agent["TASK_FAILED"] == 2
        listed = httpx.get(f"{base}/master/tasks").json()["tasks"]
        assert [t["state"] for t in listed] == ["TASK_FAILED", "TASK_FAILED"]
        prometheus = httpx.get(f"{base}/metrics").text
        assert "emporion_master_tasks_failed 2.0" in prometheus
        # The agent's own metrics, at the address the operator API gives for it.
        info = agents()[0]["agent_info"]
        scraped = httpx.get(f"http://{info['hostname']}:{info['port']}/metrics")
        assert scraped.status_code == 200
        assert "emporion_agent_containers " in scraped.text

        # The framework stopped its driver: torn down, kept as completed with its tasks.
        wait_until(lambda: "FRAMEWORK_REMOVED" in [e["type"] for e in events], "its removal")
        state = httpx.get(f"{base}/master/state").json()
        [gone] = state["completed_frameworks"]
        assert gone["name"] == "exiting"
        assert len(gone["completed_tasks"]) == 2
    reader.join(timeout=30)
    assert not errors


@pytest.mark.root
@needs_root
def test_the_agent_reports_its_containers_usage_from_their_cgroups(tmp_path: Path) -> None:
    with LocalCluster(agents=1, isolation="cgroups", work_dir=tmp_path) as cluster:
        base = f"http://{cluster.master_http_address}"
        wait_until(
            lambda: bool(operator_call(base, {"type": "GET_AGENTS"})["get_agents"]["agents"]),
            "the agent's registration",
        )
        framework = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.master_http.exiting_framework",
                "--master",
                str(cluster.master_address),
                "--tasks",
                "1",
                "--command",
                f"{sys.executable} -c 'import time; b = bytearray(8 * 2**20); time.sleep(60)'",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            [agent] = operator_call(base, {"type": "GET_AGENTS"})["get_agents"]["agents"]
            info = agent["agent_info"]
            url = f"http://{info['hostname']}:{info['port']}/metrics"

            def usage() -> dict[str, float]:
                found = {}
                for family in text_string_to_metric_families(httpx.get(url).text):
                    for sample in family.samples:
                        if sample.labels.get("executor_id") or sample.name.endswith("containers"):
                            found[sample.name] = sample.value
                return found

            wait_until(
                lambda: usage().get("emporion_agent_container_memory_usage_bytes", 0) > 8 * 2**20,
                "the task's memory in its cgroup",
            )
            figures = usage()
            assert figures["emporion_agent_containers"] == 1.0
            assert figures["emporion_agent_container_cpu_usage_seconds_total"] > 0.0
            assert figures["emporion_agent_container_memory_limit_bytes"] == 32 * 2**20
            [task] = operator_call(base, {"type": "GET_TASKS"})["get_tasks"]["tasks"]
            assert task["state"] == "TASK_RUNNING"
        finally:
            framework.kill()
            framework.wait(timeout=30)
