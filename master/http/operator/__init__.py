"""The v1 operator API of the master: ``POST /api/v1`` calls and the SUBSCRIBE event stream.

:class:`OperatorApi` answers calls (:mod:`.calls`, reading their JSON with :mod:`.parse`);
:class:`OperatorEvents` is the live event hub (:mod:`.events`); :func:`operator_router` serves
both over HTTP (:mod:`.router`). The web UI uses the same :class:`OperatorApi` in-process
(``app.state.operator``). The JSON shapes are Mesos's (``master.core.operator_json``), with
Emporion's additions documented in ``docs/http-api.md``.
"""

from master.http.operator.calls import EVERY_MASTER_CALLS, Operate, OperatorApi, config_flags
from master.http.operator.events import EventSubscription, Listening, OperatorEvents
from master.http.operator.parse import OperatorCallError
from master.http.operator.router import operator_router, recordio

__all__ = [
    "EVERY_MASTER_CALLS",
    "EventSubscription",
    "Listening",
    "Operate",
    "OperatorApi",
    "OperatorCallError",
    "OperatorEvents",
    "config_flags",
    "operator_router",
    "recordio",
]
