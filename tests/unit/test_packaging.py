"""pyproject.toml agrees with the generated code: runtime floors and the pinned generator."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", spec)
        assert match, spec
        found[match.group(1).lower()] = match.group(2).strip()
    return found


def test_grpc_floor_and_tools_pin_match_the_generated_code() -> None:
    generated = (ROOT / "protos" / "v1" / "scheduler_pb2_grpc.py").read_text()
    match = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", generated)
    assert match
    reqs = requirements()
    assert reqs["grpcio"] == f">={match.group(1)}"
    assert reqs["grpcio-tools"] == f"=={match.group(1)}"


def test_protobuf_floor_matches_the_generated_code() -> None:
    generated = (ROOT / "protos" / "v1" / "mesos_pb2.py").read_text()
    match = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", generated)
    assert match
    assert requirements()["protobuf"] == ">=" + ".".join(match.groups())


def test_required_runtime_dependencies_are_declared() -> None:
    assert {"grpcio", "protobuf", "kazoo", "fastapi", "uvicorn"} <= set(requirements())
