"""The master's HTTP API: health, leader redirects, the cluster's state, roles and metrics.

The first piece of Emporion's operator API (``docs/http-api.md``), the base of the web UI.
:func:`create_app` builds a FastAPI app over a :class:`MasterView` (the read-only face of the
master: its id, times, state machine while leading, the leader's HTTP address), with one
router per concern (:mod:`master.http.routes`). :class:`MasterHttpServer` runs it with uvicorn
inside the master's own event loop. Followers answer ``/health``, ``/version`` and
``/metrics/snapshot`` themselves and redirect (307) everything else to the leader
(:mod:`master.http.leadership`); bad parameters get 400 (:mod:`master.http.errors`).

FastAPI and uvicorn stay here: ``master.core`` builds the JSON (``master.core.snapshot``).
"""

from master.http.app import create_app
from master.http.leadership import NO_LEADER, NotLeadingError
from master.http.server import MasterHttpServer
from master.http.view import MasterView

__all__ = ["NO_LEADER", "MasterHttpServer", "MasterView", "NotLeadingError", "create_app"]
