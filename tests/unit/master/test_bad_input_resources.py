"""protos.resources on bad input: a ValueError naming the resource, never another exception."""

from __future__ import annotations

import math

import pytest

from protos.resources import Resources, validate_role
from protos.v1 import mesos_pb2

Value = mesos_pb2.Value


def _scalar(name: str, value: float) -> mesos_pb2.Resource:
    return mesos_pb2.Resource(name=name, type=Value.SCALAR, scalar=Value.Scalar(value=value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e308, "value is too large (at most 9007199254740)"),
        (1.7976931348623157e308, "value is too large"),  # The largest double.
        (9007199254741.0, "value is too large"),
        (math.inf, "must be a finite number"),
        (-math.inf, "must be a finite number"),
        (math.nan, "must be a finite number"),
        (-0.5, "must be non-negative"),
    ],
)
def test_bad_scalars_are_value_errors_naming_the_resource(value: float, message: str) -> None:
    with pytest.raises(ValueError, match="invalid resource #1 'mem'") as raised:
        Resources.from_protos([_scalar("cpus", 1), _scalar("mem", value)])
    assert message in str(raised.value)
    with pytest.raises(ValueError, match=r"invalid resource 'mem:"):
        Resources.scalars(mem=value)


def test_the_largest_scalar_is_kept_exactly() -> None:
    largest = Resources.from_protos([_scalar("mem", 9007199254740.0)])
    assert largest.scalar_thousandths()["mem"] == 9007199254740000
    assert Resources.parse("mem:9007199254740") == largest


def test_type_conflicts_name_the_resource() -> None:
    offered = Resources.parse("cpus:4;mem:64;ports:[1-10];zones:{a,b}")
    assert offered.type_conflict(Resources.parse("cpus:1;mem:1")) is None
    assert offered.type_conflict(Resources.parse("cpus:[1-2]")) == ("cpus", "SCALAR", "RANGES")
    assert offered.type_conflict(Resources.parse("ports:3")) == ("ports", "RANGES", "SCALAR")
    assert offered.type_conflict(Resources.parse("zones:[1-1]")) == ("zones", "SET", "RANGES")
    # Another reservation of the same name is the same resource.
    assert offered.type_conflict(Resources.parse("cpus(eng):{x}")) == ("cpus", "SCALAR", "SET")
    assert offered.type_conflict(Resources.parse("gpus:[1-1]")) is None
    assert Resources.EMPTY.type_conflict(offered) is None


def test_long_input_is_quoted_by_a_prefix() -> None:
    proto = _scalar("n" * 10_000 + " x", 1)
    with pytest.raises(ValueError, match="field 'name'") as raised:
        Resources.from_protos([proto])
    assert "(10002 chars)" in str(raised.value)
    assert len(str(raised.value)) < 400
    with pytest.raises(ValueError, match="invalid role") as raised:
        validate_role("r" * 10_000 + " x")
    assert "(10002 chars)" in str(raised.value)
    assert len(str(raised.value)) < 400
