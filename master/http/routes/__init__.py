"""The master's HTTP routers, one per concern; each is built from a MasterView.

``health`` (``/health``, ``/version``), ``state`` (``/master/state`` and the other views of the
cluster), ``roles`` (``/master/roles``, ``/master/weights``), ``metrics``
(``/metrics/snapshot``), ``prometheus`` (``/metrics``), ``mesos`` (``/master/flags``, Mesos's
``?jsonp=`` and the process fields of ``/master/state``). ``/master/redirect`` lives with the
leader logic in :mod:`master.http.leadership`; ``/api/v1`` in :mod:`master.http.operator`.
"""

from master.http.routes.health import health_router
from master.http.routes.mesos import flags_router
from master.http.routes.metrics import metrics_router
from master.http.routes.prometheus import prometheus_router
from master.http.routes.roles import roles_router
from master.http.routes.state import state_router

__all__ = [
    "flags_router",
    "health_router",
    "metrics_router",
    "prometheus_router",
    "roles_router",
    "state_router",
]
