"""Mesos's v1 scheduler HTTP API (``POST /api/v1/scheduler``), so pymesos schedulers run as-is.

:mod:`.router` checks each request as Mesos does and hands its Call to the same state machine
the gRPC ``Scheduler`` service feeds; :mod:`.fast` serves its POSTs ahead of FastAPI's routing
with the same checks; :mod:`.codec` reads Calls (JSON or protobuf) and writes
the SUBSCRIBE stream's events as RecordIO records; :mod:`protos.mesos_http` writes messages in
Mesos's JSON (64-bit integers as numbers). ``docs/mesos-compatibility.md`` says what is served
and where it differs from Mesos.
"""

from master.http.scheduler_api.codec import APPLICATION_JSON, APPLICATION_PROTOBUF, record
from master.http.scheduler_api.fast import SchedulerFastPath
from master.http.scheduler_api.router import (
    SCHEDULER_PATHS,
    STREAM_ID_HEADER,
    EventSource,
    SchedulerRuntime,
    scheduler_router,
)
from protos.mesos_http import message_json

__all__ = [
    "APPLICATION_JSON",
    "APPLICATION_PROTOBUF",
    "SCHEDULER_PATHS",
    "STREAM_ID_HEADER",
    "EventSource",
    "SchedulerFastPath",
    "SchedulerRuntime",
    "message_json",
    "record",
    "scheduler_router",
]
