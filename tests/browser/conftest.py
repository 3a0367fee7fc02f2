"""Fixtures of the browser tests: Debian's chromium driven by Playwright, a real cluster.

* ``browser`` (module): chromium at ``/usr/bin/chromium`` through Playwright's sync API, with a
  fresh user-data-dir and the flags that keep it off the network; skipped cleanly when chromium
  or Playwright is missing.
* ``cluster`` (module): a real master and a real agent (``LocalCluster`` subprocesses, the same
  as ``emporion local``), with the master's HTTP API and UI on a free port.
* ``framework`` (module): a real framework (the SDK's client) subscribed to it.
* ``shoot(page, name)``: a screenshot of the page, kept under the test's tmp dir, and written to
  ``$EMPORION_UI_SCREENSHOTS/<name>.png`` when that is set (how ``docs/ui/*.png`` are made:
  ``EMPORION_UI_SCREENSHOTS=docs/ui pytest -m browser tests/browser``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.ui import CHROMIUM, CHROMIUM_ARGS
from emporion.local_cluster import LocalCluster
from tests.browser.framework import UiFramework

WAIT_MS = 30_000
"""How long a page waits for something to appear (a bound, not an expectation)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A chromium browser context with a fresh profile (Playwright's BrowserContext).

    Module-scoped: Playwright's sync API runs an event loop on the main thread while it is
    open, and ``asyncio.run`` in any later test would refuse to start under it.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"chromium is not installed at {CHROMIUM} (.ci/system-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        pytest.skip("playwright is not installed")
    profile = tempfile.mkdtemp(prefix="emporion-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )
            context.set_default_timeout(WAIT_MS)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(browser: Any) -> Iterator[LocalCluster]:
    """A real master and one real agent (subprocesses); the master serves the UI."""
    with LocalCluster(agents=1, agent_resources="cpus:4;mem:4096;disk:1000") as running:
        assert running.master_http_address is not None
        slaves = f"http://{running.master_http_address}/master/slaves"
        deadline = time.monotonic() + WAIT_MS / 1000
        while not httpx.get(slaves, timeout=10).json()["slaves"]:
            if time.monotonic() > deadline:
                pytest.fail("the agent did not register with the master")
            time.sleep(0.05)
        yield running


@pytest.fixture(scope="module")
def framework(cluster: LocalCluster) -> Iterator[UiFramework]:
    """A real framework subscribed to ``cluster``'s master."""
    assert cluster.master_address is not None
    made = UiFramework(
        cluster.master_address, "ui-test", webui_url="http://example.invalid/", roles=("eng",)
    )
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab; JavaScript errors on it, or a request anywhere but this machine (a CDN),
    fail the test."""
    tab = browser.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(("http://127.0.0.1:", "data:", "about:", "blob:"))
            else elsewhere.append(request.url)
        ),
    )
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not elsewhere, f"requests beyond the master: {elsewhere}"


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """``shoot(page, name)``: a full-page PNG of ``page`` (see the module docstring)."""
    wanted = os.environ.get("EMPORION_UI_SCREENSHOTS")

    def take(tab: Any, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        if wanted:
            Path(wanted).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(wanted) / f"{name}.png")
        return path

    return take
