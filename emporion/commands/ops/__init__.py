"""The commands for people: ``run``, ``status``, ``agents``, ``frameworks``, ``tasks``, ``task``,
``logs``, ``explain`` and ``teardown``.

Each talks to a master found from ``--master`` (or ``$EMPORION_MASTER``): the operator API and
the sandbox proxy on its HTTP port, and, for ``run``, the scheduler API on its gRPC port
(:mod:`emporion.client`). :mod:`.common` holds the shared flags, error lines and output helpers;
``docs/cli.md`` shows every command with an example.
"""

from emporion.commands.ops import cluster, run, steer, tasks

MODULES = (run, cluster, tasks, steer)
"""The modules whose ``register(subparsers)`` add these commands, in the order ``--help`` lists
them."""

__all__ = ["MODULES"]
