"""The web UI in a real browser (chromium) against a real master, agent and framework."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emporion.local_cluster import LocalCluster
from tests.browser.framework import UiFramework

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]


def url(cluster: LocalCluster, path: str) -> str:
    """``path`` on the master's HTTP address."""
    return f"http://{cluster.master_http_address}{path}"


def live(page: Any) -> None:
    """Wait until the page's live stream is connected and its watch list posted."""
    page.wait_for_selector("#live.on")
    page.wait_for_function("window.emporion && window.emporion.viewer() !== null")


def test_overview_lists_agents_and_frameworks(
    cluster: LocalCluster, framework: UiFramework, page: Any, shoot: Shoot
) -> None:
    framework.run_task("sleeper", "sleep 600")
    page.goto(url(cluster, "/"))
    agents = page.locator("#overview-agents tbody tr")
    assert agents.count() == 1
    assert agents.first.get_attribute("data-agent-id")
    frameworks = page.locator("#overview-frameworks")
    assert frameworks.get_by_text("ui-test").count() == 1
    # uPlot drew the four utilisation charts.
    assert page.locator("#charts .uplot").count() == 4
    live(page)
    shoot(page, "overview")

    page.locator("#overview-agents tbody tr a").first.click()
    page.wait_for_selector("text=Tasks on this agent")
    shoot(page, "agent")


def test_a_tasks_stdout_is_readable_and_its_end_shows_without_a_reload(
    cluster: LocalCluster, framework: UiFramework, page: Any, shoot: Shoot, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    framework.run_task(
        "say-hello",
        "echo hello-from-the-sandbox; echo to-stderr >&2;"
        f" while [ ! -e {go} ]; do sleep 0.05; done",
    )
    fid = framework.framework_id
    page.goto(url(cluster, f"/ui/tasks/{fid}/say-hello"))
    page.wait_for_selector("#log:has-text('hello-from-the-sandbox')")
    page.wait_for_selector("#sandbox-files >> text=stdout")
    shoot(page, "task")
    page.locator(".viewer-bar button[data-view=stderr]").click()
    page.wait_for_selector("#log:has-text('to-stderr')")

    page.goto(url(cluster, f"/ui/tasks?framework={fid}"))
    row = page.locator("#tasks tr[data-task-id='say-hello']")
    assert row.locator("[data-state]").get_attribute("data-state") == "TASK_RUNNING"
    live(page)
    page.evaluate("window.notReloaded = true")
    go.touch()
    framework.wait_state("say-hello", "TASK_FINISHED")
    page.wait_for_selector("#tasks tr[data-task-id='say-hello'] [data-state=TASK_FINISHED]")
    assert page.evaluate("window.notReloaded === true")
    shoot(page, "tasks")


def test_a_suppressed_framework_is_explained_in_words(
    cluster: LocalCluster, page: Any, shoot: Shoot
) -> None:
    assert cluster.master_address is not None
    quiet = UiFramework(cluster.master_address, "quiet")
    try:
        quiet.suppress()
        page.goto(url(cluster, f"/ui/frameworks/{quiet.framework_id}"))
        page.wait_for_selector("#explanation")
        text = page.locator("#explanation").inner_text().lower()
        assert "suppressed" in text, text
        shoot(page, "framework")

        # Tearing it down from its page asks first, then the page says it was done.
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("button.danger").click()
        page.wait_for_selector("#flash .done")
    finally:
        quiet.stop()


def test_every_list_page_renders(
    cluster: LocalCluster, framework: UiFramework, page: Any, shoot: Shoot
) -> None:
    # A role's weight changes from its row, after a confirmation.
    page.goto(url(cluster, "/ui/roles"))
    row = page.locator("#roles tr[data-role=eng]")
    row.locator("summary").click()
    row.locator("input[name=weight]").fill("2.5")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("form[hx-post$='/weight'] button").click()
    page.wait_for_selector("#flash .done")
    page.reload()
    assert page.locator("#roles tr[data-role=eng] td.num").first.inner_text() == "2.5"
    # And its quota: a guarantee and a limit, shown against what the role holds.
    row = page.locator("#roles tr[data-role=eng]")
    row.locator("summary").click()
    row.locator("input[name=guarantee_cpus]").fill("1")
    row.locator("input[name=limit_cpus]").fill("2")
    row.locator("input[name=limit_mem]").fill("2048")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("form.quota button").click()
    page.wait_for_selector("#flash .done")
    page.reload()
    assert "0.1 / 1 / 2" in page.locator("#roles tr[data-role=eng]").inner_text()

    for path, name, selector in (
        ("/ui/agents", "agents", "#agents tbody tr[data-agent-id]"),
        ("/ui/frameworks", "frameworks", "#frameworks tbody tr[data-framework-id]"),
        ("/ui/roles", "roles", "#roles tbody tr[data-role]"),
        ("/ui/offers", "offers", "#offers"),
    ):
        page.goto(url(cluster, path))
        page.wait_for_selector(selector)
        shoot(page, name)
    # FastAPI's API page, with swagger-ui from the package.
    page.goto(url(cluster, "/docs"))
    page.wait_for_selector(".swagger-ui .info >> text=Emporion master")

    # Filtering the agents swaps the table in place (htmx), on the server.
    page.goto(url(cluster, "/ui/agents"))
    page.fill("input[name=q]", "no-such-agent")
    page.wait_for_selector("#agents >> text=no agent matches")
    assert "q=no-such-agent" in page.url
