"""framework_sdk's public surface, and the I/O-free core beneath its runtime."""

from __future__ import annotations

import inspect

import pytest

import framework_sdk
from framework_sdk import Scheduler, SchedulerDriver
from tests.unit.test_architecture import IO_MODULES, transitive_imports

# Modules that decide what happens; only the client (aio.py, _stream_client.py, _batching.py) and
# the driver (driver.py, _threaded_driver.py) may do I/O. (scheduler.py is left out: it names
# SchedulerDriver in annotations only, which this import walk cannot tell.)
SANS_IO = (
    "framework_sdk.session",
    "framework_sdk.calls",
    "framework_sdk.events",
    "framework_sdk.builders",
    "framework_sdk.messages",
    "framework_sdk.config",
    "framework_sdk.errors",
    "framework_sdk.status",
)


def test_exported_names() -> None:
    assert sorted(framework_sdk.__all__) == [
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
    for name in framework_sdk.__all__:
        assert getattr(framework_sdk, name) is not None


def test_aio_client_lives_in_framework_sdk_aio() -> None:
    from framework_sdk.aio import SchedulerClient

    assert SchedulerClient is framework_sdk.SchedulerClient


@pytest.mark.parametrize("module", SANS_IO)
def test_core_modules_do_no_io(module: str) -> None:
    reached = sorted(n for n in transitive_imports(module) if n.split(".")[0] in IO_MODULES)
    assert reached == []


def test_scheduler_callbacks_have_mesos_names_and_arguments() -> None:
    expected = {
        "registered": ["driver", "frameworkId", "masterInfo"],
        "reregistered": ["driver", "masterInfo"],
        "disconnected": ["driver"],
        "resourceOffers": ["driver", "offers"],
        "offerRescinded": ["driver", "offerId"],
        "statusUpdate": ["driver", "status"],
        "frameworkMessage": ["driver", "executorId", "agentId", "message"],
        "slaveLost": ["driver", "agentId"],
        "executorLost": ["driver", "executorId", "agentId", "status"],
        "error": ["driver", "message"],
    }
    for name, params in expected.items():
        signature = inspect.signature(getattr(Scheduler, name))
        assert list(signature.parameters)[1:] == params, name


def test_driver_has_the_classic_methods() -> None:
    expected = {
        "start": [],
        "stop": ["failover"],
        "abort": [],
        "join": [],
        "run": [],
        "launchTasks": ["offerIds", "tasks", "filters"],
        "acceptOffers": ["offerIds", "operations", "filters"],
        "declineOffer": ["offerId", "filters"],
        "reviveOffers": ["roles"],
        "suppressOffers": ["roles"],
        "killTask": ["taskId"],
        "acknowledgeStatusUpdate": ["status"],
        "reconcileTasks": ["statuses"],
        "requestResources": ["requests"],
        "sendFrameworkMessage": ["executorId", "agentId", "data"],
        "updateFramework": ["frameworkInfo", "suppressedRoles", "offerConstraints"],
    }
    for name, params in expected.items():
        signature = inspect.signature(getattr(SchedulerDriver, name))
        assert list(signature.parameters)[1:] == params, name
    init = list(inspect.signature(SchedulerDriver).parameters)
    assert init[:4] == ["scheduler", "framework_info", "master", "implicit_acknowledgements"]


def test_base_scheduler_callbacks_are_no_ops() -> None:
    scheduler = Scheduler()
    driver = SchedulerDriver(scheduler, framework_sdk.messages.framework_info("x"), "h:1")
    offer = framework_sdk.messages.Offer()
    scheduler.disconnected(driver)
    scheduler.resourceOffers(driver, [offer])
    scheduler.error(driver, "message")
    assert driver.status is framework_sdk.Status.DRIVER_NOT_STARTED
