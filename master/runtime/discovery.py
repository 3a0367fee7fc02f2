"""``/emporion.Discovery/MasterInfo``: where a master's HTTP API is, asked on its gRPC port.

Frameworks and the command line are given the master's gRPC address (``HOST:PORT``); the
operator API, the web UI and the sandbox proxy are on its HTTP port, which may be anything
(``--http-port``). Under ``--zk`` the candidate znode publishes both addresses; a master given
as ``HOST:PORT`` answers this one unary method instead, with the same JSON document its znode
holds (:func:`protos.leader_info.master_info_json`: MasterInfo in Mesos's JSON form plus
``grpc_address`` and, when it serves HTTP, ``http_address``). Read it back with
:func:`protos.leader_info.leader_from_json`.

Every master answers, leading or not: a follower's HTTP API redirects leader-only requests to
the leader, so its own address is all a client needs. The method takes any request bytes
(none is expected) and needs no generated code: requests and answers are raw bytes.
"""

from __future__ import annotations

import grpc
from grpc import aio

__all__ = ["DISCOVERY_METHOD", "add_discovery"]

DISCOVERY_SERVICE = "emporion.Discovery"
DISCOVERY_METHOD = f"/{DISCOVERY_SERVICE}/MasterInfo"
"""The full gRPC method name clients call (request: empty; answer: UTF-8 JSON)."""


def add_discovery(server: aio.Server, document: bytes) -> None:
    """Serve ``document`` (this master's candidate-znode JSON) at :data:`DISCOVERY_METHOD`."""

    async def master_info(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        return document

    handler = grpc.unary_unary_rpc_method_handler(master_info)  # raw bytes in and out
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(DISCOVERY_SERVICE, {"MasterInfo": handler}),)
    )
