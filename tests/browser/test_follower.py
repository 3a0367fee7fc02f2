"""A follower's UI redirects the browser to the leader's (real masters under real ZooKeeper)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ha.conftest import (
    MasterFactory,
    wait_one_leader,
    zk_masters,
    zk_server,
    zk_url,
)

pytestmark = [pytest.mark.browser, pytest.mark.zk]

__all__ = ["zk_masters", "zk_server", "zk_url"]  # fixtures, imported to be found by pytest


def test_a_followers_pages_redirect_to_the_leader(
    zk_masters: MasterFactory, page: Any, shoot: Callable[[Any, str], Path]
) -> None:
    masters = zk_masters(2)
    leader = wait_one_leader(masters)
    [follower] = [m for m in masters if m is not leader]

    page.goto(f"http://{follower.http_address}/ui/agents?q=x")
    assert page.url == f"http://{leader.http_address}/ui/agents?q=x"
    page.wait_for_selector("#agents")

    page.goto(f"http://{follower.http_address}/")
    assert page.url == f"http://{leader.http_address}/"
    # The page names the master that leads.
    assert leader.master_id in page.locator("footer").inner_text()
    page.wait_for_selector("#live.on")
