"""What Mesos's own tools read from a master, beyond the state itself.

Mesos serves every endpoint on its one libprocess port, so its ``pid`` (``master@ip:port``)
and ``leader_info`` name the HTTP port. Emporion's core knows its gRPC address; here, where the
HTTP port is known, ``pid``, ``leader`` and ``leader_info`` are restated on the HTTP port (the
Mesos web UI and mesos_exporter follow them), and the fields Mesos's ``/master/state`` carries
about the process are added (``src/master/readonly_handler.cpp``): ``flags``, ``capabilities``,
``build_date`` / ``build_time`` / ``build_user`` (for a Python package: when and by whom this
Emporion was installed, read from its distribution's metadata; absent when it runs from a
source tree without installing), ``git_sha`` when known.

Also here: ``?jsonp=CALLBACK`` on every read-only JSON endpoint
(:func:`protos.mesos_json.jsonp`), and ``/master/flags`` (``{"flags": {name: value}}``).
"""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

import datetime
import functools
import ipaddress
import os
import pwd
from collections.abc import Mapping
from importlib import metadata
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from google.protobuf import json_format

from master.core import Master
from master.http.view import MasterView
from protos.mesos_json import answer, master_pid
from protos.v1 import mesos_pb2

__all__ = [
    "Jsonp",
    "flags_router",
    "mesos_encoded_response",
    "mesos_master_fields",
    "mesos_response",
]

Jsonp = Annotated[
    str | None,
    Query(description="Mesos's JSONP: the answer is CALLBACK(<json>); as text/javascript"),
]


def mesos_response(data: Any, callback: str | None) -> Response:
    """``data`` as JSON, or as ``callback(<json>);`` when ``?jsonp=`` names one (400 naming
    the parameter when it is not a JavaScript name): :func:`protos.mesos_json.answer`."""
    status, media_type, body = answer(data, callback)
    return Response(body, status_code=status, media_type=media_type)


def mesos_encoded_response(body: bytes, callback: str | None) -> Response:
    """As :func:`mesos_response`, for an answer already encoded as JSON (``body``)."""
    if callback is None:
        return Response(body, media_type="application/json")
    status, media_type, refusal = answer(None, callback)  # Checks the callback's name.
    if status != 200:
        return Response(refusal, status_code=status, media_type=media_type)
    return Response(b"%s(%s);" % (callback.encode(), body), media_type=media_type)


@functools.cache
def build_fields() -> dict[str, Any]:
    """``build_date``, ``build_time`` and ``build_user`` of this installation (see the module
    docstring); empty when Emporion is not installed as a distribution."""
    try:
        dist = metadata.distribution("emporion")
    except metadata.PackageNotFoundError:
        return {}
    path = getattr(dist, "_path", None)  # the .dist-info directory (PathDistribution)
    if path is None:
        return {}
    try:
        status = os.stat(path)
    except OSError:
        return {}
    try:
        user = pwd.getpwuid(status.st_uid).pw_name
    except KeyError:
        user = str(status.st_uid)
    when = datetime.datetime.fromtimestamp(status.st_mtime, tz=datetime.UTC)
    return {
        "build_date": when.strftime("%Y-%m-%d %H:%M:%S"),
        "build_time": float(int(status.st_mtime)),
        "build_user": user,
    }


def http_master_info(master: Master, http_address: str | None) -> mesos_pb2.MasterInfo:
    """The master's MasterInfo with ``port``, ``address.port`` and ``pid`` on the HTTP port
    (unchanged when no HTTP address is known)."""
    info = mesos_pb2.MasterInfo()
    info.CopyFrom(master.master_info)
    if http_address:
        host, _, port = http_address.rpartition(":")
        host = host.strip("[]")
        if port.isdigit():
            info.port = info.address.port = int(port)
            if _is_ip(host) and host != info.address.ip:
                info.address.ip = host
                if ipaddress.ip_address(host).version == 4:
                    # Network byte order read natively, as Mesos (make_master_info).
                    info.ip = int.from_bytes(ipaddress.IPv4Address(host).packed, "little")
                else:
                    info.ClearField("ip")
            info.pid = master_pid(info.address.ip or host, int(port))
    return info


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def mesos_master_fields(
    master: Master, view: MasterView, flags: Mapping[str, str] | None
) -> dict[str, Any]:
    """The fields of Mesos's ``/master/state`` about the master process (module docstring)."""
    info = http_master_info(master, view.leader_http_address())
    out: dict[str, Any] = {
        "pid": info.pid,
        "leader": info.pid,
        "leader_info": json_format.MessageToDict(info, preserving_proto_field_name=True),
        "capabilities": [
            mesos_pb2.MasterInfo.Capability.Type.Name(c.type) for c in info.capabilities
        ],
        "flags": dict(flags or {}),
        **build_fields(),
    }
    return out


def flags_router(flags: Mapping[str, str] | None) -> APIRouter:
    """``GET /master/flags`` and ``GET /flags``: ``{"flags": {name: value}}`` (any master)."""
    router = APIRouter(tags=["state"])
    shown = dict(flags or {})

    @router.get("/master/flags")
    @router.get("/flags")
    async def get_flags(jsonp: Jsonp = None) -> Response:
        """This master's flags, values as text (as Mesos's ``/flags``)."""
        return mesos_response({"flags": shown}, jsonp)

    return router
