"""Scheduler Calls read from Mesos's JSON; events written in it (:mod:`protos.mesos_http`)."""

from __future__ import annotations

from protos.mesos_http import JsonMessageError, message_from_json, message_json
from protos.v1 import scheduler_pb2

__all__ = ["CallJsonError", "call_from_json", "message_json"]

CallJsonError = JsonMessageError
"""A JSON document that is not a ``mesos.v1.scheduler.Call``; the message names the field."""


def call_from_json(document: object) -> scheduler_pb2.Call:
    """The Call a parsed JSON document holds. Raises CallJsonError naming the bad field."""
    return message_from_json(document, scheduler_pb2.Call())
