"""The Mesos message types and constants, with a few builders: what schedulers handle daily.

Porting a Mesos Python framework means replacing ``from mesos.interface import mesos_pb2`` with
``from framework_sdk import messages as mesos_pb2``: the v1 message classes (``TaskInfo``,
``FrameworkInfo``, ``Offer``, ``TaskStatus``, ``Filters``, ``TaskID``...), the task states
(``messages.TASK_FINISHED``), the status-update reasons and sources
(``messages.REASON_RECONCILIATION``, ``messages.SOURCE_MASTER``) and the driver statuses
(``messages.DRIVER_STOPPED``) are all here. Names follow Mesos's **v1** API, so ``slave_id``
is ``agent_id`` and ``SlaveID`` is ``AgentID``.

The builders (:func:`scalar`, :func:`parse_resources`, :func:`task_info`,
:func:`framework_info`, :func:`filters`, :func:`is_terminal`...) come from
:mod:`framework_sdk.builders`; :class:`Resources` (from ``protos.resources``) is the resource
arithmetic: ``Resources.parse("cpus:1;mem:128")``, ``Resources.from_protos(offer.resources)``,
``.contains()``, ``-``, ``+``, ``.to_protos()``.
"""

from __future__ import annotations

from framework_sdk.builders import (
    TERMINAL_STATES,
    filters,
    framework_info,
    is_terminal,
    offer_resources,
    parse_resources,
    ranges,
    reason_name,
    scalar,
    set_items,
    state_name,
    task_info,
)
from framework_sdk.status import Status as DriverStatus
from protos.resources import Resources
from protos.v1.mesos_pb2 import (
    URL,
    UUID,
    Address,
    AgentID,
    AgentInfo,
    Attribute,
    CapabilityInfo,
    CgroupInfo,
    CheckInfo,
    CheckStatusInfo,
    CommandInfo,
    ContainerID,
    ContainerInfo,
    ContainerStatus,
    Credential,
    Credentials,
    DiscoveryInfo,
    DiskStatistics,
    DomainInfo,
    DrainConfig,
    DrainInfo,
    DrainState,
    DurationInfo,
    Environment,
    ExecutorID,
    ExecutorInfo,
    FileInfo,
    Filters,
    Flag,
    FrameworkID,
    FrameworkInfo,
    HealthCheck,
    Image,
    InverseOffer,
    KillPolicy,
    Label,
    Labels,
    LinuxInfo,
    MachineID,
    MachineInfo,
    MasterInfo,
    Metric,
    MountPropagation,
    NetworkInfo,
    Offer,
    OfferFilters,
    OfferID,
    Operation,
    OperationID,
    OperationState,
    OperationStatus,
    Parameter,
    Parameters,
    Port,
    Ports,
    RateLimit,
    RateLimits,
    Request,
    Resource,
    ResourceProviderID,
    ResourceStatistics,
    ResourceUsage,
    RLimitInfo,
    Role,
    Secret,
    Status,
    Task,
    TaskGroupInfo,
    TaskID,
    TaskInfo,
    TaskResourceLimitation,
    TaskState,
    TaskStatus,
    TimeInfo,
    TTYInfo,
    Unavailability,
    Value,
    VersionInfo,
    Volume,
    WeightInfo,
)
from protos.v1.scheduler_pb2 import AttributeConstraint, Call, Event, OfferConstraints

# Task states (mesos.v1.TaskState).
TASK_STAGING = TaskState.TASK_STAGING
TASK_STARTING = TaskState.TASK_STARTING
TASK_RUNNING = TaskState.TASK_RUNNING
TASK_KILLING = TaskState.TASK_KILLING
TASK_FINISHED = TaskState.TASK_FINISHED
TASK_FAILED = TaskState.TASK_FAILED
TASK_KILLED = TaskState.TASK_KILLED
TASK_ERROR = TaskState.TASK_ERROR
TASK_LOST = TaskState.TASK_LOST
TASK_DROPPED = TaskState.TASK_DROPPED
TASK_UNREACHABLE = TaskState.TASK_UNREACHABLE
TASK_GONE = TaskState.TASK_GONE
TASK_GONE_BY_OPERATOR = TaskState.TASK_GONE_BY_OPERATOR
TASK_UNKNOWN = TaskState.TASK_UNKNOWN

# Why a task's state changed (TaskStatus.Reason).
REASON_COMMAND_EXECUTOR_FAILED = TaskStatus.REASON_COMMAND_EXECUTOR_FAILED
REASON_CONTAINER_LAUNCH_FAILED = TaskStatus.REASON_CONTAINER_LAUNCH_FAILED
REASON_CONTAINER_LIMITATION = TaskStatus.REASON_CONTAINER_LIMITATION
REASON_CONTAINER_LIMITATION_DISK = TaskStatus.REASON_CONTAINER_LIMITATION_DISK
REASON_CONTAINER_LIMITATION_MEMORY = TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY
REASON_CONTAINER_PREEMPTED = TaskStatus.REASON_CONTAINER_PREEMPTED
REASON_CONTAINER_UPDATE_FAILED = TaskStatus.REASON_CONTAINER_UPDATE_FAILED
REASON_MAX_COMPLETION_TIME_REACHED = TaskStatus.REASON_MAX_COMPLETION_TIME_REACHED
REASON_EXECUTOR_REGISTRATION_TIMEOUT = TaskStatus.REASON_EXECUTOR_REGISTRATION_TIMEOUT
REASON_EXECUTOR_REREGISTRATION_TIMEOUT = TaskStatus.REASON_EXECUTOR_REREGISTRATION_TIMEOUT
REASON_EXECUTOR_TERMINATED = TaskStatus.REASON_EXECUTOR_TERMINATED
REASON_EXECUTOR_UNREGISTERED = TaskStatus.REASON_EXECUTOR_UNREGISTERED
REASON_FRAMEWORK_REMOVED = TaskStatus.REASON_FRAMEWORK_REMOVED
REASON_GC_ERROR = TaskStatus.REASON_GC_ERROR
REASON_INVALID_FRAMEWORKID = TaskStatus.REASON_INVALID_FRAMEWORKID
REASON_INVALID_OFFERS = TaskStatus.REASON_INVALID_OFFERS
REASON_IO_SWITCHBOARD_EXITED = TaskStatus.REASON_IO_SWITCHBOARD_EXITED
REASON_MASTER_DISCONNECTED = TaskStatus.REASON_MASTER_DISCONNECTED
REASON_RECONCILIATION = TaskStatus.REASON_RECONCILIATION
REASON_RESOURCES_UNKNOWN = TaskStatus.REASON_RESOURCES_UNKNOWN
REASON_AGENT_DISCONNECTED = TaskStatus.REASON_AGENT_DISCONNECTED
REASON_AGENT_DRAINING = TaskStatus.REASON_AGENT_DRAINING
REASON_AGENT_REMOVED = TaskStatus.REASON_AGENT_REMOVED
REASON_AGENT_REMOVED_BY_OPERATOR = TaskStatus.REASON_AGENT_REMOVED_BY_OPERATOR
REASON_AGENT_REREGISTERED = TaskStatus.REASON_AGENT_REREGISTERED
REASON_AGENT_RESTARTED = TaskStatus.REASON_AGENT_RESTARTED
REASON_AGENT_UNKNOWN = TaskStatus.REASON_AGENT_UNKNOWN
REASON_TASK_KILLED_DURING_LAUNCH = TaskStatus.REASON_TASK_KILLED_DURING_LAUNCH
REASON_TASK_CHECK_STATUS_UPDATED = TaskStatus.REASON_TASK_CHECK_STATUS_UPDATED
REASON_TASK_HEALTH_CHECK_STATUS_UPDATED = TaskStatus.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
REASON_TASK_GROUP_INVALID = TaskStatus.REASON_TASK_GROUP_INVALID
REASON_TASK_GROUP_UNAUTHORIZED = TaskStatus.REASON_TASK_GROUP_UNAUTHORIZED
REASON_TASK_INVALID = TaskStatus.REASON_TASK_INVALID
REASON_TASK_UNAUTHORIZED = TaskStatus.REASON_TASK_UNAUTHORIZED
REASON_TASK_UNKNOWN = TaskStatus.REASON_TASK_UNKNOWN

# Who sent a status update (TaskStatus.Source).
SOURCE_MASTER = TaskStatus.SOURCE_MASTER
SOURCE_AGENT = TaskStatus.SOURCE_AGENT
SOURCE_EXECUTOR = TaskStatus.SOURCE_EXECUTOR

# Operation states (mesos.v1.OperationState).
OPERATION_UNSUPPORTED = OperationState.OPERATION_UNSUPPORTED
OPERATION_PENDING = OperationState.OPERATION_PENDING
OPERATION_FINISHED = OperationState.OPERATION_FINISHED
OPERATION_FAILED = OperationState.OPERATION_FAILED
OPERATION_ERROR = OperationState.OPERATION_ERROR
OPERATION_DROPPED = OperationState.OPERATION_DROPPED
OPERATION_UNREACHABLE = OperationState.OPERATION_UNREACHABLE
OPERATION_GONE_BY_OPERATOR = OperationState.OPERATION_GONE_BY_OPERATOR
OPERATION_RECOVERING = OperationState.OPERATION_RECOVERING
OPERATION_UNKNOWN = OperationState.OPERATION_UNKNOWN

# Driver statuses, as SchedulerDriver methods return them: the Status members themselves (equal
# to the mesos.v1.Status values), so `driver.run() == messages.DRIVER_STOPPED` type-checks.
DRIVER_NOT_STARTED = DriverStatus.DRIVER_NOT_STARTED
DRIVER_RUNNING = DriverStatus.DRIVER_RUNNING
DRIVER_ABORTED = DriverStatus.DRIVER_ABORTED
DRIVER_STOPPED = DriverStatus.DRIVER_STOPPED

__all__ = [
    # builders and the Resources type
    "TERMINAL_STATES",
    "filters",
    "framework_info",
    "is_terminal",
    "offer_resources",
    "parse_resources",
    "ranges",
    "reason_name",
    "scalar",
    "set_items",
    "state_name",
    "task_info",
    "Resources",
    # messages and enums
    "Address",
    "AgentID",
    "AgentInfo",
    "Attribute",
    "AttributeConstraint",
    "Call",
    "CapabilityInfo",
    "CgroupInfo",
    "CheckInfo",
    "CheckStatusInfo",
    "CommandInfo",
    "ContainerID",
    "ContainerInfo",
    "ContainerStatus",
    "Credential",
    "Credentials",
    "DiscoveryInfo",
    "DiskStatistics",
    "DomainInfo",
    "DrainConfig",
    "DrainInfo",
    "DrainState",
    "DurationInfo",
    "Environment",
    "Event",
    "ExecutorID",
    "ExecutorInfo",
    "FileInfo",
    "Filters",
    "Flag",
    "FrameworkID",
    "FrameworkInfo",
    "HealthCheck",
    "Image",
    "InverseOffer",
    "KillPolicy",
    "Label",
    "Labels",
    "LinuxInfo",
    "MachineID",
    "MachineInfo",
    "MasterInfo",
    "Metric",
    "MountPropagation",
    "NetworkInfo",
    "Offer",
    "OfferConstraints",
    "OfferFilters",
    "OfferID",
    "Operation",
    "OperationID",
    "OperationState",
    "OperationStatus",
    "Parameter",
    "Parameters",
    "Port",
    "Ports",
    "RLimitInfo",
    "RateLimit",
    "RateLimits",
    "Request",
    "Resource",
    "ResourceProviderID",
    "ResourceStatistics",
    "ResourceUsage",
    "Role",
    "Secret",
    "Status",
    "TTYInfo",
    "Task",
    "TaskGroupInfo",
    "TaskID",
    "TaskInfo",
    "TaskResourceLimitation",
    "TaskState",
    "TaskStatus",
    "TimeInfo",
    "URL",
    "UUID",
    "Unavailability",
    "Value",
    "VersionInfo",
    "Volume",
    "WeightInfo",
    # constants
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_UNREACHABLE",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
    "REASON_COMMAND_EXECUTOR_FAILED",
    "REASON_CONTAINER_LAUNCH_FAILED",
    "REASON_CONTAINER_LIMITATION",
    "REASON_CONTAINER_LIMITATION_DISK",
    "REASON_CONTAINER_LIMITATION_MEMORY",
    "REASON_CONTAINER_PREEMPTED",
    "REASON_CONTAINER_UPDATE_FAILED",
    "REASON_MAX_COMPLETION_TIME_REACHED",
    "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
    "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
    "REASON_EXECUTOR_TERMINATED",
    "REASON_EXECUTOR_UNREGISTERED",
    "REASON_FRAMEWORK_REMOVED",
    "REASON_GC_ERROR",
    "REASON_INVALID_FRAMEWORKID",
    "REASON_INVALID_OFFERS",
    "REASON_IO_SWITCHBOARD_EXITED",
    "REASON_MASTER_DISCONNECTED",
    "REASON_RECONCILIATION",
    "REASON_RESOURCES_UNKNOWN",
    "REASON_AGENT_DISCONNECTED",
    "REASON_AGENT_DRAINING",
    "REASON_AGENT_REMOVED",
    "REASON_AGENT_REMOVED_BY_OPERATOR",
    "REASON_AGENT_REREGISTERED",
    "REASON_AGENT_RESTARTED",
    "REASON_AGENT_UNKNOWN",
    "REASON_TASK_KILLED_DURING_LAUNCH",
    "REASON_TASK_CHECK_STATUS_UPDATED",
    "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
    "REASON_TASK_GROUP_INVALID",
    "REASON_TASK_GROUP_UNAUTHORIZED",
    "REASON_TASK_INVALID",
    "REASON_TASK_UNAUTHORIZED",
    "REASON_TASK_UNKNOWN",
    "SOURCE_MASTER",
    "SOURCE_AGENT",
    "SOURCE_EXECUTOR",
    "OPERATION_UNSUPPORTED",
    "OPERATION_PENDING",
    "OPERATION_FINISHED",
    "OPERATION_FAILED",
    "OPERATION_ERROR",
    "OPERATION_DROPPED",
    "OPERATION_UNREACHABLE",
    "OPERATION_GONE_BY_OPERATOR",
    "OPERATION_RECOVERING",
    "OPERATION_UNKNOWN",
    "DRIVER_NOT_STARTED",
    "DRIVER_RUNNING",
    "DRIVER_ABORTED",
    "DRIVER_STOPPED",
]
