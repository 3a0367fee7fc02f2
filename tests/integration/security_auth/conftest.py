"""Fixtures of the authentication suite: one set of certificates and files per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.ha.conftest import zk_masters, zk_server, zk_url
from tests.integration.security_auth.support import Secured, make_secured

__all__ = ["secured", "zk_masters", "zk_server", "zk_url"]


@pytest.fixture(scope="session")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Secured:
    """Certificates, credentials and ACLs (made once: key generation is the slow part)."""
    directory: Path = tmp_path_factory.mktemp("secured")
    return make_secured(directory)
