"""framework_sdk: what framework authors import to write schedulers for Emporion.

Two ways to write a scheduler, sharing one implementation:

* the classic Mesos API: subclass :class:`Scheduler`, hand it to a :class:`SchedulerDriver`
  (``start``/``join``/``run``, ``launchTasks``, ``declineOffer``, ...). Porting a Mesos Python
  framework means changing its imports::

      from framework_sdk import Scheduler, SchedulerDriver as MesosSchedulerDriver
      from framework_sdk import messages as mesos_pb2

* the asyncio client, :class:`framework_sdk.aio.SchedulerClient`: ``async with`` it, iterate
  ``client.events()`` (typed :mod:`framework_sdk.events`) and await its calls.

:mod:`framework_sdk.messages` holds the message types, task states and builders. Both talk to
the master only over its gRPC ``Scheduler`` service, reconnect on their own with backoff, and
never import the master or agent packages. See ``docs/sdk.md``.

Executors are written the same two ways: subclass :class:`Executor` and run it with an
:class:`ExecutorDriver`, or use the asyncio :class:`ExecutorClient`. They talk to their agent's
``Executor`` gRPC service, found through the ``MESOS_*`` environment the agent sets
(:class:`ExecutorConfig`). See ``docs/executor.md``.
"""

from __future__ import annotations

from framework_sdk import events, messages
from framework_sdk.aio import SchedulerClient
from framework_sdk.config import ClientConfig
from framework_sdk.detector import (
    MasterDetector,
    StaticMasterDetector,
    create_detector,
    register_scheme,
)
from framework_sdk.driver import SchedulerDriver, Status
from framework_sdk.errors import (
    CallError,
    CallFailedError,
    CallRefusedError,
    DriverStateError,
    NotSubscribedError,
    SchedulerSDKError,
    SubscriptionError,
)
from framework_sdk.executor import Executor
from framework_sdk.executor_aio import AgentCallFailedError, AgentCallRefusedError, ExecutorClient
from framework_sdk.executor_config import ExecutorConfig, ExecutorEnvironmentError
from framework_sdk.executor_driver import ExecutorDriver
from framework_sdk.scheduler import Scheduler

__all__ = [
    "AgentCallFailedError",
    "AgentCallRefusedError",
    "CallError",
    "CallFailedError",
    "CallRefusedError",
    "ClientConfig",
    "DriverStateError",
    "Executor",
    "ExecutorClient",
    "ExecutorConfig",
    "ExecutorDriver",
    "ExecutorEnvironmentError",
    "MasterDetector",
    "NotSubscribedError",
    "Scheduler",
    "SchedulerClient",
    "SchedulerDriver",
    "SchedulerSDKError",
    "StaticMasterDetector",
    "Status",
    "SubscriptionError",
    "create_detector",
    "events",
    "messages",
    "register_scheme",
]
