"""The master's HTTP routers, one per concern; each is built from a MasterView.

``health`` (``/health``, ``/version``), ``state`` (``/master/state`` and the other views of the
cluster), ``roles`` (``/master/roles``, ``/master/weights``), ``metrics``
(``/metrics/snapshot``). ``/master/redirect`` lives with the leader logic in
:mod:`master.http.leadership`.
"""

from master.http.routes.health import health_router
from master.http.routes.metrics import metrics_router
from master.http.routes.roles import roles_router
from master.http.routes.state import state_router

__all__ = ["health_router", "metrics_router", "roles_router", "state_router"]
