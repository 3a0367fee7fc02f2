"""Operator actions from the UI: tear down a framework, change a role's weight or quota.

Each is a form the page posts with htmx after the browser's confirmation (``hx-confirm``) and
carries out as one operator call (TEARDOWN, UPDATE_WEIGHTS, UPDATE_QUOTA), so it is checked
and refused exactly as ``POST /api/v1`` would be. The answer is a one-line fragment saying what
was done, or why not (400 a bad field, 404 an unknown framework, 409 refused steering).

Actions require the ``HX-Request`` header: a browser sends such a header cross-site only after
a CORS preflight, which the master never grants, so another site cannot forge an action with a
plain form (CSRF). Forms are read as ``application/x-www-form-urlencoded`` without extra
dependencies.
"""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

import math
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from master.core import Master
from master.http.leadership import leading
from master.http.view import MasterView

from .api import RESOURCE_NAMES, OperatorCalls
from .calls import UiCallError, call, ui_route_class
from .render import Renderer

__all__ = ["actions_router", "parse_amount"]

MAX_FORM_BYTES = 16 * 1024


def parse_amount(field: str, text: str, *, positive: bool = False) -> float | None:
    """The number typed into form field ``field`` (None when empty).

    Raises UiCallError (400) naming the field for anything but a finite number >= 0 (> 0 if
    ``positive``).
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UiCallError(400, f"field '{field}' must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise UiCallError(400, f"field '{field}' must be a finite number {bound}, got {text!r}")
    return value


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("HX-Request") != "true":
        raise UiCallError(403, "operator actions are only accepted from the UI's own pages")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise UiCallError(413, f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise UiCallError(400, "the form is not UTF-8") from None
    return {name: values[-1] for name, values in fields.items()}


def actions_router(view: MasterView, operator: OperatorCalls, renderer: Renderer) -> APIRouter:
    """``POST /ui/frameworks/<id>/teardown``, ``/ui/roles/<role>/weight`` and ``.../quota``."""
    router = APIRouter(include_in_schema=False, route_class=ui_route_class(renderer))
    lead = Annotated[Master, Depends(leading(view))]

    def done(message: str) -> HTMLResponse:
        return renderer.page("parts/done.html", message=message)

    @router.post("/ui/frameworks/{framework_id}/teardown", response_class=HTMLResponse)
    async def teardown(framework_id: str, request: Request, _: lead) -> HTMLResponse:
        await _form(request)
        call(
            operator,
            {"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}},
        )
        return done(f"Framework {framework_id} was torn down: its tasks are being killed.")

    @router.post("/ui/roles/{role}/weight", response_class=HTMLResponse)
    async def weight(role: str, request: Request, _: lead) -> HTMLResponse:
        form = await _form(request)
        value = parse_amount("weight", form.get("weight", ""), positive=True)
        if value is None:
            raise UiCallError(400, "field 'weight' is required")
        call(
            operator,
            {
                "type": "UPDATE_WEIGHTS",
                "update_weights": {"weight_infos": [{"role": role, "weight": value}]},
            },
        )
        return done(f"Role {role} now weighs {value:g}.")

    @router.post("/ui/roles/{role}/quota", response_class=HTMLResponse)
    async def quota(role: str, request: Request, _: lead) -> HTMLResponse:
        form = await _form(request)
        guarantees: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for name in RESOURCE_NAMES:
            for kind, into in (("guarantee", guarantees), ("limit", limits)):
                amount = parse_amount(f"{kind}_{name}", form.get(f"{kind}_{name}", ""))
                if amount is not None:
                    into[name] = {"value": amount}
        config = {"role": role, "guarantees": guarantees, "limits": limits}
        force = form.get("force", "") in ("on", "true", "1")
        call(
            operator,
            {"type": "UPDATE_QUOTA", "update_quota": {"force": force, "quota_configs": [config]}},
        )
        if not guarantees and not limits:
            return done(f"Role {role} has no quota any more.")
        return done(f"Role {role}'s quota is set.")

    return router
