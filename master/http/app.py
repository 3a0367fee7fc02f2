"""create_app: the master's FastAPI application, built from a MasterView.

Every endpoint is a coroutine, so it runs on the master's own event loop between two inputs of
the state machine and reads a consistent state without locks (FastAPI would run a plain
function in a worker thread). Responses are built with ``JSONResponse`` from the plain data of
:mod:`master.core.snapshot`, skipping FastAPI's model encoding.

The v1 operator API (``POST /api/v1``, :mod:`master.http.operator`) is one
:class:`~master.http.operator.OperatorApi`, kept as ``app.state.operator`` for the web UI, which
calls it in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from master.auth.view import ViewAcls
from master.http.errors import validation_error_response
from master.http.leadership import NotLeadingError, not_leading_response, redirect_router
from master.http.operator import Operate, OperatorApi, operator_router
from master.http.routes import (
    flags_router,
    health_router,
    metrics_router,
    prometheus_router,
    roles_router,
    state_router,
)
from master.http.scheduler_api import SchedulerFastPath, SchedulerRuntime, scheduler_router
from master.http.ui import ui_router
from master.http.view import MasterView

__all__ = ["create_app"]


def create_app(
    view: MasterView,
    *,
    clock: Callable[[], float] = time.time,
    operate: Operate | None = None,
    flags: Mapping[str, str] | None = None,
    scheduler: Callable[[], SchedulerRuntime | None] = lambda: None,
    views: ViewAcls | None = None,
) -> FastAPI:
    """The HTTP API of the master ``view`` describes (``docs/http-api.md``).

    ``clock`` gives seconds since the epoch (``master/uptime_secs``). ``operate`` runs the
    operator's steering calls on the master's state owner (None: they answer 503); ``flags``
    are the master's flags (GET_FLAGS); ``scheduler`` gives the runtime that serves Mesos's
    scheduler API (``/api/v1/scheduler``) while this master leads, None while it does not.
    ``views`` holds the ``view_frameworks`` / ``view_tasks`` ACLs: every endpoint that shows
    frameworks or tasks leaves out what the request's principal may not see (None: all shown).
    """
    visibility = (views or ViewAcls()).current
    operator = OperatorApi(view, clock=clock, operate=operate, flags=flags, visibility=visibility)
    app = FastAPI(
        title="Emporion master",
        version=view.version,
        description="The operator HTTP API of an Emporion master (docs/http-api.md).",
        # FastAPI's /docs and /redoc load their scripts from a CDN: the web UI serves /docs
        # from vendored swagger-ui instead, and /redoc is off (docs/ui.md).
        docs_url=None,
        redoc_url=None,
    )
    # The scheduler API's POSTs (one per status update) skip FastAPI's and Starlette's layers
    # (same answers): the master's authentication gate hands admitted requests to the fast
    # path, which passes what it does not serve on to this app (master.auth.http).
    app.state.scheduler_fast_path = SchedulerFastPath(app, runtime=scheduler, state=app.state)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(NotLeadingError, not_leading_response(view))
    # First: its calls are the most frequent requests (one per status update), and routes are
    # matched in order.
    app.include_router(scheduler_router(view, scheduler))
    app.include_router(health_router(view))
    app.include_router(redirect_router(view))
    app.include_router(state_router(view, flags, visibility))
    app.include_router(flags_router(flags))
    app.include_router(roles_router(view, visibility))
    app.include_router(metrics_router(view, clock))
    app.include_router(prometheus_router(view, clock))
    app.include_router(operator_router(operator))
    app.include_router(ui_router(view, operator, clock=clock, visibility=visibility))
    app.state.operator = operator
    return app
