"""The HA fixtures (a real ZooKeeper, masters under it, a real agent following them)."""

from tests.integration.ha.conftest import zk_masters, zk_server, zk_url
from tests.integration.ha.test_real_agent import start_agent

__all__ = ["start_agent", "zk_masters", "zk_server", "zk_url"]
