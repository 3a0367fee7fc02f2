"""The ZooKeeper fixtures of tests/integration/ha (a server per module, a path per test,
masters as processes), for the ``zk://`` tests here."""

from tests.integration.ha.conftest import zk_masters, zk_server, zk_url

__all__ = ["zk_masters", "zk_server", "zk_url"]
