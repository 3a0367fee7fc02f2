"""The command line's client of a master: finding it, its operator API, its sandbox proxy.

:func:`discover` turns ``--master`` (``HOST:PORT``, ``zk://...`` or ``http://...``) into
:class:`MasterEndpoints`; :class:`OperatorClient` makes operator API calls and id lookups;
:class:`SandboxFile` reads a task's files through the master; :class:`ClientSecurity` holds TLS
and credentials (the SDK's ``EMPORION_SDK_*`` variables). Every failure is one of
:mod:`emporion.client.errors`, carrying the one line to print and the exit status.
"""

from emporion.client.discovery import ENV_MASTER, MasterEndpoints, discover, master_from_env
from emporion.client.errors import ClientError, NotFoundError, UnreachableError, UsageError
from emporion.client.operator import OperatorClient, tasks_of
from emporion.client.sandbox import SandboxFile, follow, read_all
from emporion.client.security import ClientSecurity

__all__ = [
    "ENV_MASTER",
    "ClientError",
    "ClientSecurity",
    "MasterEndpoints",
    "NotFoundError",
    "OperatorClient",
    "SandboxFile",
    "UnreachableError",
    "UsageError",
    "discover",
    "follow",
    "master_from_env",
    "read_all",
    "tasks_of",
]
