"""Fixtures: a real local HTTP server and a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.integration.agent_parts.servers import LocalServer, running_server


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A threaded HTTP server on 127.0.0.1, port 0 (see ``servers.LocalServer``)."""
    with running_server() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
