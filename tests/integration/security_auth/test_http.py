"""The HTTP side of a secured master: TLS, basic authentication (401) and the ACLs (403) of the
operator API, the web UI's actions and sandbox proxy, and the scheduler HTTP API; the issue's
"unauthenticated operator calls and sandbox reads" refused, the legitimate calls served.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from master.runtime import MasterServer
from protos.security import basic_header
from tests.integration.master.clients import wait_for
from tests.integration.security_auth.support import (
    SECRETS,
    Secured,
    credential,
    scheduler,
    secured_master,
)
from tests.integration.security_auth.test_penetration import framework


def client(secured: Secured) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=secured.tls().client_ssl_context(), trust_env=False, timeout=10)


def auth(principal: str, secret: str | None = None) -> dict[str, str]:
    return {
        "Authorization": basic_header(principal, SECRETS[principal] if secret is None else secret)
    }


def url(server: MasterServer, path: str) -> str:
    assert server.http is not None
    return f"https://localhost:{server.http.port}{path}"


async def operator_call(
    http: httpx.AsyncClient, server: MasterServer, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await http.post(
        url(server, "/api/v1"),
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
    )


def test_operator_endpoints_need_credentials(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server, client(secured) as http:
            anonymous = await http.get(url(server, "/master/state"))
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == 'Basic realm="emporion"'
            assert anonymous.json() == {
                "error": "authentication failed: no credentials given (authentication is required)"
            }
            wrong = await http.get(url(server, "/master/state"), headers=auth("viewer", "nope"))
            assert wrong.status_code == 401
            assert wrong.json() == {
                "error": "authentication failed: invalid credentials for principal 'viewer'"
            }
            assert "nope" not in wrong.text
            garbled = await http.get(
                url(server, "/master/state"), headers={"Authorization": "Basic %%%"}
            )
            assert garbled.status_code == 401
            assert "not valid base64" in garbled.text
            state = await http.get(url(server, "/master/state"), headers=auth("viewer"))
            assert state.status_code == 200
            assert state.json()["id"] == server.master_id
            # Health stays open for load balancers.
            assert (await http.get(url(server, "/health"))).status_code == 200
            # The operator API (read-write realm): refused without credentials.
            body = {"type": "GET_FRAMEWORKS"}
            assert (await operator_call(http, server, body, {})).status_code == 401
            answer = await operator_call(http, server, body, auth("viewer"))
            assert answer.status_code == 200

    asyncio.run(main())


def test_teardown_weights_and_quota_follow_the_acls(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server, client(secured) as http:
            fw = await scheduler(server.address, secured.tls(), credential("framework-a"))
            framework_id = await fw.subscribe(framework("a"))
            teardown = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}}
            # Another framework's principal may not tear it down (the attacker) ...
            denied = await operator_call(http, server, teardown, auth("framework-b"))
            assert denied.status_code == 403
            assert denied.json() == {
                "detail": "principal 'framework-b' is not authorized to teardown_frameworks:"
                " refused by the ACLs on 'framework-a'"
            }
            core = server.core
            assert core is not None
            assert core.framework(framework_id) is not None
            weights = {
                "type": "UPDATE_WEIGHTS",
                "update_weights": {"weight_infos": [{"role": "a", "weight": 5}]},
            }
            denied = await operator_call(http, server, weights, auth("viewer"))
            assert denied.status_code == 403
            assert "principal 'viewer' is not authorized to update_weights" in denied.text
            assert "a" not in core.state.allocator.weights()
            quota = {
                "type": "UPDATE_QUOTA",
                "update_quota": {"quota_configs": [{"role": "a", "guarantees": {"cpus": 1}}]},
            }
            denied = await operator_call(http, server, quota, auth("viewer"))
            assert denied.status_code == 403
            assert "principal 'viewer' is not authorized to update_quotas" in denied.text
            # ... the operator may.
            assert (await operator_call(http, server, weights, auth("operator"))).status_code == 200
            await wait_for(lambda: core.state.allocator.weights().get("a") == 5.0, "the weight")
            done = await operator_call(http, server, teardown, auth("operator"))
            assert done.status_code == 200
            await wait_for(lambda: core.framework(framework_id) is None, "the teardown")
            await fw.close()

    asyncio.run(main())


def test_sandbox_proxy_needs_access_sandboxes(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server, client(secured) as http:
            fw = await scheduler(server.address, secured.tls(), credential("framework-a"))
            framework_id = await fw.subscribe(framework("a"))
            path = f"/ui/sandbox/{framework_id}/t1/files"
            assert (await http.get(url(server, path))).status_code == 401
            denied = await http.get(url(server, path), headers=auth("viewer"))
            assert denied.status_code == 403
            assert denied.json() == {
                "error": "principal 'viewer' is not authorized to access_sandboxes:"
                " refused by the ACLs on 'tester'"
            }
            # The operator gets through to the proxy, which finds no such task (404).
            allowed = await http.get(url(server, path), headers=auth("operator"))
            assert allowed.status_code == 404
            await fw.close()

    asyncio.run(main())


def test_scheduler_http_api_authenticates_and_guards_framework_ids(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server, client(secured) as http:
            victim = await scheduler(server.address, secured.tls(), credential("framework-a"))
            victim_id = await victim.subscribe(framework("a"))
            subscribe = {
                "type": "SUBSCRIBE",
                "framework_id": {"value": victim_id},
                "subscribe": {
                    "framework_info": {
                        "user": "tester",
                        "name": "thief",
                        "role": "b",
                        "id": {"value": victim_id},
                    }
                },
            }
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            anonymous = await http.post(
                url(server, "/api/v1/scheduler"), content=json.dumps(subscribe), headers=headers
            )
            assert anonymous.status_code == 401
            taken = await http.post(
                url(server, "/api/v1/scheduler"),
                content=json.dumps(subscribe),
                headers={**headers, **auth("framework-b")},
            )
            assert taken.status_code == 403
            assert taken.text == (
                f"principal 'framework-b' is not authorized to register_frameworks: framework"
                f" {victim_id} belongs to principal 'framework-a': only its owner may subscribe"
                " with its id"
            )
            assert server.core is not None
            owned = server.core.framework(victim_id)
            assert owned is not None
            assert owned.stream_id == victim.stream_id
            await victim.close()

    asyncio.run(main())


def test_plain_http_to_a_tls_master_is_refused(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            assert server.http is not None
            async with httpx.AsyncClient(trust_env=False, timeout=5) as plain:
                with pytest.raises(httpx.HTTPError):
                    await plain.get(f"http://localhost:{server.http.port}/health")

    asyncio.run(main())


def test_a_client_certificate_stands_as_the_principal_over_https(secured: Secured) -> None:
    """Mutual TLS on the HTTP port: the verified certificate's subject is the principal, as on
    gRPC; credentials sent beside it are still checked, and who has no certificate must log in."""

    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            framework_a = secured.tls("framework-a").client_ssl_context()
            async with httpx.AsyncClient(verify=framework_a, trust_env=False, timeout=10) as http:
                state = await http.get(url(server, "/master/state"))
                assert state.status_code == 200, state.text
                # The certificate's principal is held to the ACLs: framework-a may not tear down.
                refused = await operator_call(
                    http,
                    server,
                    {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "nope"}}},
                    {},
                )
                assert refused.status_code == 403
                assert "principal 'framework-a' is not authorized" in refused.text
                wrong = await http.get(
                    url(server, "/master/state"), headers=auth("framework-a", "wrong")
                )
                assert wrong.status_code == 401
            async with client(secured) as anonymous:
                assert (await anonymous.get(url(server, "/master/state"))).status_code == 401

    asyncio.run(main())
