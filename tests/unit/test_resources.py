"""Unit tests of protos.resources: parsing, text form, arithmetic, reservations and protos."""

from __future__ import annotations

import pickle
import re

import pytest

from protos import resources as resources_module
from protos.resources import (
    Reservation,
    ResourceKey,
    Resources,
    is_ancestor_or_self,
    validate_role,
)
from protos.v1 import mesos_pb2

AGENT = "cpus:32;mem:262144;disk:1000000;ports:[31000-32000]"


def R(text: str) -> Resources:
    return Resources.parse(text)


# -- parsing --------------------------------------------------------------------------------------


def test_parse_agent_flag() -> None:
    r = R(
        "cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];bugs(debug):{a,b,c}"
    )
    assert r.get("cpus") == 24.0
    assert r.get("gpus") == 2.0
    assert r.get("mem") == 24576.0
    assert r.ranges("ports") == ((21000, 24000), (30000, 34000))
    assert r.set_items("bugs") == frozenset("abc")
    assert r.reserved("debug") == R("bugs(debug):{a,b,c}")
    assert r.names() == frozenset({"cpus", "gpus", "mem", "disk", "ports", "bugs"})


def test_parse_empty_and_blank() -> None:
    assert R("") is Resources.EMPTY or R("") == Resources.EMPTY
    assert R("  ;; ") == Resources.EMPTY
    assert not R("")
    assert R("ports:[];bugs:{};cpus:0") == Resources.EMPTY


def test_parse_tolerates_whitespace() -> None:
    spaced = R(" cpus ( eng/prod ) : 2 ; ports : [ 1 - 5 , 7-9 ] ; s:{ a , b } ;")
    assert spaced == R("cpus(eng/prod):2;ports:[1-5,7-9];s:{a,b}")


def test_parse_reservations() -> None:
    r = R("cpus:1;cpus(*):2;cpus(eng):3;cpus(eng/prod):4")
    assert r.get("cpus") == 10.0
    assert r.unreserved() == R("cpus:3")
    assert r.reserved("eng") == R("cpus(eng):3")
    assert r.reserved("eng/prod") == R("cpus(eng/prod):4")
    assert r.reservation_roles() == frozenset({"eng", "eng/prod"})
    ((key, value),) = list(R("cpus(eng):3").items())
    assert key == ResourceKey("cpus", (Reservation("eng", "static"),), False)
    assert key.role == "eng"
    assert value == 3.0


def test_parse_default_role() -> None:
    r = Resources.parse("cpus:1;mem(*):2;disk(ops):3", default_role="eng")
    assert r == R("cpus(eng):1;mem:2;disk(ops):3")
    with pytest.raises(ValueError, match="invalid role '-x'"):
        Resources.parse("cpus:1", default_role="-x")


def test_parse_dynamic_refined_and_revocable() -> None:
    text = "cpus(eng,eng/web[dynamic:alice]){REV}:1;mem(ops[dynamic]):2;disk(x[static:bob]):3"
    r = R(text)
    keys = {key.name: key for key, _ in r.items()}
    assert keys["cpus"].reservations == (
        Reservation("eng"),
        Reservation("eng/web", "dynamic", "alice"),
    )
    assert keys["cpus"].revocable
    assert keys["mem"].reservations == (Reservation("ops", "dynamic"),)
    assert keys["disk"].reservations == (Reservation("x", "static", "bob"),)
    assert R("cpus{REV}:1").revocable() == R("cpus{REV}:1")
    assert R("cpus{REV}:1;cpus:2").non_revocable() == R("cpus:2")


def test_duplicate_keys_add_up() -> None:
    assert R("cpus:1;cpus:2.5") == R("cpus:3.5")
    assert R("ports:[1-3];ports:[4-6,10-10]") == R("ports:[1-6,10-10]")
    assert R("s:{a};s:{b}") == R("s:{a,b}")


def test_ranges_are_merged_and_single_ports_accepted() -> None:
    assert R("ports:[5-9,1-3,4-4,20]").ranges("ports") == ((1, 9), (20, 20))
    assert str(R("ports:[7]")) == "ports:[7-7]"


@pytest.mark.parametrize(
    ("text", "token", "problem"),
    [
        ("cpus:-1", "cpus:-1", "value must be non-negative"),
        ("cpus:nan", "cpus:nan", "finite"),
        ("cpus:inf", "cpus:inf", "finite"),
        ("mem:-Infinity", "mem:-Infinity", "finite"),
        ("cpus:abc", "cpus:abc", "not a number"),
        ("cpus:1_000", "cpus:1_000", "not a number"),
        ("cpus:1e300", "cpus:1e300", "too large"),
        ("ports:[5-1]", "ports:[5-1]", "begin > end"),
        ("ports:[a-b]", "ports:[a-b]", "bad range"),
        ("ports:[-1-5]", "ports:[-1-5]", "bad range"),
        ("ports:[1-\uff12]", "ports:[1-\uff12]", "bad range"),
        ("ports:[1-2", "ports:[1-2", "must end with"),
        ("ports:[0-18446744073709551616]", "ports:[0-18446744073709551616]", "64 bits"),
        ("s:{a,,b}", "s:{a,,b}", "empty item"),
        ("s:{a", "s:{a", "must end with"),
        ("cpus(", "cpus(", "missing ':'"),
        ("cpus(eng:1", "cpus(eng:1", "mismatched"),
        ("cpus", "cpus", "missing ':'"),
        ("(role):1", "(role):1", "bad resource name ''"),
        (":1", ":1", "bad resource name ''"),
        ("cp us:1", "cp us:1", "bad resource name"),
        ("cpus(eng)x:1", "cpus(eng)x:1", "unexpected 'x'"),
        ("cpus():1", "cpus():1", "invalid role ''"),
        ("cpus(.):1", "cpus(.):1", "invalid role '.'"),
        ("cpus(..):1", "cpus(..):1", "invalid role '..'"),
        ("cpus(-eng):1", "cpus(-eng):1", "starts with a dash"),
        ("cpus(/eng):1", "cpus(/eng):1", "slash"),
        ("cpus(eng/):1", "cpus(eng/):1", "slash"),
        ("cpus(a//b):1", "cpus(a//b):1", "adjacent slashes"),
        ("cpus(eng/*):1", "cpus(eng/*):1", "'\\*' as a component"),
        ("cpus(eng/./x):1", "cpus(eng/./x):1", "'.' as a component"),
        ("cpus(*,eng):1", "cpus(*,eng):1", "'\\*' cannot be part"),
        ("cpus(eng,ops[dynamic]):1", "cpus(eng,ops[dynamic]):1", "not a refinement"),
        ("cpus(eng,eng/a):1", "cpus(eng,eng/a):1", "must be dynamic"),
        ("cpus(eng[weird]):1", "cpus(eng[weird]):1", "unknown reservation type"),
        ("ports:[1-2];ports:3", "ports:3", "different types"),
    ],
)
def test_parse_errors_name_the_token(text: str, token: str, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid resource '{re.escape(token)}': .*{problem}"):
        R(text)


def test_same_name_different_types_across_reservations_rejected() -> None:
    with pytest.raises(ValueError, match="different types"):
        R("ports:[1-2];ports(eng):3")


# -- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["*", "eng", "eng/prod", "a.b", "x-y", "e*g", "r/s/t", "ünï"])
def test_valid_roles(role: str) -> None:
    validate_role(role)


@pytest.mark.parametrize(
    "role", ["", ".", "..", "-eng", "eng/-x", "/eng", "eng/", "a//b", "a b", "a\tb", "a\x7f", "a/*"]
)
def test_invalid_roles_are_named(role: str) -> None:
    with pytest.raises(ValueError, match=f"invalid role {re.escape(repr(role))}"):
        validate_role(role)


def test_reservation_validates() -> None:
    with pytest.raises(ValueError, match="'\\*' cannot be reserved"):
        Reservation("*")
    with pytest.raises(ValueError, match="invalid reservation type"):
        Reservation("eng", "weird")  # type: ignore[arg-type]


def test_is_ancestor_or_self() -> None:
    assert is_ancestor_or_self("eng", "eng")
    assert is_ancestor_or_self("eng", "eng/prod")
    assert is_ancestor_or_self("eng", "eng/prod/web")
    assert not is_ancestor_or_self("eng", "engineering")
    assert not is_ancestor_or_self("eng/prod", "eng")
    assert not is_ancestor_or_self("ops", "eng/ops")


# -- text form ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("mem:4096;cpus:4", "cpus:4;mem:4096"),
        ("cpus:0.5000", "cpus:0.5"),
        ("cpus:1.25;cpus(eng):2", "cpus:1.25;cpus(eng):2"),
        ("cpus(eng/web):2;cpus(eng):1", "cpus(eng):1;cpus(eng/web):2"),
        ("mem(a):1;cpus(b):2;mem:3;cpus:4", "cpus:4;mem:3;mem(a):1;cpus(b):2"),
        ("ports:[31000-32000]", "ports:[31000-32000]"),
        ("s:{c, a ,b}", "s:{a,b,c}"),
        ("cpus(eng,eng/w[dynamic:al ice]){REV}:1", "cpus(eng,eng/w[dynamic:al%20ice]){REV}:1"),
        ("cpus(*):3", "cpus:3"),
        ("", ""),
    ],
)
def test_str_is_canonical_and_round_trips(text: str, canonical: str) -> None:
    r = R(text)
    assert str(r) == canonical
    assert R(str(r)) == r


def test_str_escapes_special_characters() -> None:
    odd = Resources.from_protos(
        [
            _set_proto("s", ["a,b", "c;d", " e ", "f%g", "{h}"]),
            _scalar_proto("cpus", 1, reservations=[("we(ird):x", _DYNAMIC, "p,q)")]),
        ]
    )
    assert R(str(odd)) == odd
    assert odd.set_items("s") == frozenset({"a,b", "c;d", " e ", "f%g", "{h}"})


def test_repr() -> None:
    assert repr(R("mem:2;cpus:1")) == "Resources('cpus:1;mem:2')"


# -- scalars --------------------------------------------------------------------------------------


def test_scalars_keep_three_decimals_exactly() -> None:
    assert R("cpus:0.0001") == Resources.EMPTY
    assert Resources.scalars(cpus=0.0001) == Resources.EMPTY
    assert R("cpus:0.0005") == R("cpus:0.001")  # Rounded half up, as Mesos's llround.
    assert R("cpus:0.1") + R("cpus:0.2") == R("cpus:0.3")
    assert (R("cpus:0.1") + R("cpus:0.2")).get("cpus") == 0.3
    assert Resources.scalars(cpus=1.23456) == R("cpus:1.235")
    total = Resources.EMPTY
    for _ in range(1000):
        total += R("cpus:0.001")
    assert total == R("cpus:1")
    for _ in range(1000):
        total -= R("cpus:0.001")
    assert total == Resources.EMPTY


def test_scalars_constructor() -> None:
    assert Resources.scalars(cpus=1, mem=128, gpus=0) == R("cpus:1;mem:128")
    with pytest.raises(ValueError, match="invalid resource 'cpus:-1': value must be non-negative"):
        Resources.scalars(cpus=-1)
    with pytest.raises(ValueError, match="finite"):
        Resources.scalars(mem=float("nan"))
    with pytest.raises(ValueError, match="bad resource name"):
        Resources.scalars(**{"c p u": 1})


def test_get_and_scalar_totals_sum_over_reservations() -> None:
    r = R("cpus:1;cpus(eng):2;cpus(eng/a[dynamic]){REV}:0.5;mem:10;ports:[1-2]")
    assert r.get("cpus") == 3.5
    assert r.get("gpus") == 0.0
    assert r.get("ports") == 0.0
    assert r.scalar_totals() == {"cpus": 3.5, "mem": 10.0}
    assert r.scalar_thousandths() == {"cpus": 3500, "mem": 10000}
    with pytest.raises(TypeError):
        r.scalar_thousandths()["cpus"] = 1  # type: ignore[index]


# -- arithmetic -----------------------------------------------------------------------------------


def test_add() -> None:
    assert R("cpus:1;mem:2") + R("cpus:2;disk:3") == R("cpus:3;mem:2;disk:3")
    assert R("ports:[1-10]") + R("ports:[11-20,30-40]") == R("ports:[1-20,30-40]")
    assert R("s:{a,b}") + R("s:{b,c}") == R("s:{a,b,c}")
    assert R("cpus(eng):1") + R("cpus:1") == R("cpus:1;cpus(eng):1")
    a = R(AGENT)
    assert a + Resources.EMPTY is a
    assert Resources.EMPTY + a is a


def test_sub_is_saturating() -> None:
    assert R("cpus:4;mem:10") - R("cpus:1.5") == R("cpus:2.5;mem:10")
    assert R("cpus:1") - R("cpus:2") == Resources.EMPTY
    assert R("cpus:1") - R("cpus(eng):1") == R("cpus:1")  # Different key: nothing taken.
    assert R("ports:[1-10]") - R("ports:[3-4]") == R("ports:[1-2,5-10]")
    assert R("ports:[1-10,20-30]") - R("ports:[0-1,10-21,30-99]") == R("ports:[2-9,22-29]")
    assert R("ports:[1-10]") - R("ports:[1-10]") == Resources.EMPTY
    assert R("s:{a,b,c}") - R("s:{b,z}") == R("s:{a,c}")
    assert R("s:{a}") - R("s:{a}") == Resources.EMPTY


def test_arithmetic_type_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="different types"):
        _ = R("ports:[1-2]") + R("ports:3")
    with pytest.raises(ValueError, match="different types"):
        _ = R("ports:[1-2]") - R("ports:3")


def test_contains() -> None:
    a = R(AGENT)
    assert a.contains(R("cpus:32;ports:[31000-31000,31500-32000]"))
    assert a.contains(Resources.EMPTY)
    assert not a.contains(R("cpus:32.001"))
    assert not a.contains(R("ports:[30999-31000]"))
    assert not a.contains(R("gpus:1"))
    assert R("s:{a,b}").contains(R("s:{a}"))
    assert not R("s:{a,b}").contains(R("s:{c}"))
    assert not R("ports:[1-5,7-9]").contains(R("ports:[5-7]"))


def test_contains_is_reservation_aware() -> None:
    r = R("cpus:1;cpus(eng):2")
    assert r.contains(R("cpus(eng):2;cpus:1"))
    assert not r.contains(R("cpus:2"))
    assert not r.contains(R("cpus(ops):1"))
    assert not r.contains(R("cpus(eng[dynamic]):1"))
    assert not r.contains(R("cpus{REV}:1"))


def test_equality_and_hash() -> None:
    a, b = R("cpus:1;mem:2;ports:[1-3];s:{x}"), R("s:{x};ports:[1-3];mem:2.000;cpus:1")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, R("cpus:1")}) == 2
    assert a != R("cpus:1")
    assert a != "cpus:1"
    assert len(a) == 4


def test_immutable_and_picklable() -> None:
    r = R(AGENT)
    with pytest.raises(AttributeError):
        r._items = {}
    with pytest.raises(AttributeError):
        r.foo = 1
    assert pickle.loads(pickle.dumps(r)) == r


# -- reservations ---------------------------------------------------------------------------------


def test_allocatable_to_hierarchical_roles() -> None:
    r = R("cpus:1;cpus(eng):2;cpus(eng/prod):4;cpus(eng/dev):8;cpus(ops):16;cpus(engineering):32")
    assert r.allocatable_to("eng/prod") == R("cpus:1;cpus(eng):2;cpus(eng/prod):4")
    assert r.allocatable_to("eng") == R("cpus:1;cpus(eng):2")
    assert r.allocatable_to("ops/x") == R("cpus:1;cpus(ops):16")
    assert r.allocatable_to("other") == R("cpus:1")


def test_refined_reservation_is_allocatable_by_its_top_role() -> None:
    r = R("cpus(eng,eng/web[dynamic]):1")
    assert r.allocatable_to("eng/web") == r
    assert r.allocatable_to("eng") == Resources.EMPTY
    assert r.reserved("eng/web") == r
    assert r.reserved("eng") == Resources.EMPTY
    assert r.reservation_roles() == frozenset({"eng/web"})


def test_filter_flatten_and_reservation_stack_operations() -> None:
    r = R("cpus:1;cpus(eng):2;mem(eng/prod[dynamic:p]):3;ports(ops):[1-5];ports:[6-9]")
    assert r.filter(lambda key: key.name == "cpus") == R("cpus:1;cpus(eng):2")
    assert r.flatten() == R("cpus:3;mem:3;ports:[1-9]")
    assert r.reserved() == R("cpus(eng):2;mem(eng/prod[dynamic:p]):3;ports(ops):[1-5]")
    reserved = R("cpus(eng):2").push_reservation(Reservation("eng/a", "dynamic", "p"))
    assert reserved == R("cpus(eng,eng/a[dynamic:p]):2")
    assert reserved.pop_reservation() == R("cpus(eng):2")
    assert R("cpus:1").push_reservation(Reservation("ops", "dynamic")) == R("cpus(ops[dynamic]):1")
    with pytest.raises(ValueError, match="not a refinement"):
        R("cpus(eng):2").push_reservation(Reservation("ops", "dynamic"))
    with pytest.raises(ValueError, match="not reserved"):
        R("cpus:1").pop_reservation()


# -- dominant share -------------------------------------------------------------------------------


def test_dominant_share() -> None:
    total = R("cpus:10;mem:100;ports:[1-100]")
    assert R("cpus:1;mem:50").dominant_share(total) == 0.5
    assert R("cpus(eng):5;mem:10").dominant_share(total) == 0.5
    assert R("gpus:4;ports:[1-50]").dominant_share(total) == 0.0
    assert Resources.EMPTY.dominant_share(total) == 0.0
    assert R("cpus:1").dominant_share(Resources.EMPTY) == 0.0


# -- protos ---------------------------------------------------------------------------------------

_STATIC = mesos_pb2.Resource.ReservationInfo.STATIC
_DYNAMIC = mesos_pb2.Resource.ReservationInfo.DYNAMIC


def _scalar_proto(
    name: str, value: float, reservations: list[tuple[str, int, str | None]] | None = None
) -> mesos_pb2.Resource:
    proto = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SCALAR)
    proto.scalar.value = value
    for role, kind, principal in reservations or []:
        info = proto.reservations.add(role=role, type=kind)
        if principal is not None:
            info.principal = principal
    return proto


def _set_proto(name: str, items: list[str]) -> mesos_pb2.Resource:
    proto = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SET)
    proto.set.item.extend(items)
    return proto


def test_proto_round_trip() -> None:
    r = R(AGENT + ";cpus(eng,eng/w[dynamic:al]){REV}:1.5;s(ops):{a,b};gpus(x[dynamic]):0.001")
    protos = r.to_protos()
    assert Resources.from_protos(protos) == r
    assert all(not p.HasField("role") for p in protos)
    cpus = next(p for p in protos if p.name == "cpus" and p.reservations)
    assert [(i.role, i.type, i.principal) for i in cpus.reservations] == [
        ("eng", _STATIC, ""),
        ("eng/w", _DYNAMIC, "al"),
    ]
    assert cpus.HasField("revocable")
    assert cpus.scalar.value == 1.5


def test_to_protos_allocation_role_is_ignored_on_the_way_back() -> None:
    protos = R("cpus:1;mem:2").to_protos(allocation_role="eng")
    assert {p.allocation_info.role for p in protos} == {"eng"}
    assert Resources.from_protos(protos) == R("cpus:1;mem:2")


def test_from_protos_legacy_role_fields() -> None:
    static = _scalar_proto("cpus", 1)
    static.role = "eng"
    dynamic = _scalar_proto("mem", 2)
    dynamic.role = "ops"
    dynamic.reservation.principal = "alice"
    unreserved = _scalar_proto("disk", 3)
    unreserved.role = "*"
    expected = R("cpus(eng):1;mem(ops[dynamic:alice]):2;disk:3")
    assert Resources.from_protos([static, dynamic, unreserved]) == expected


def test_from_protos_adds_repeated_keys() -> None:
    assert Resources.from_protos([_scalar_proto("cpus", 1), _scalar_proto("cpus", 2)]) == R(
        "cpus:3"
    )


def _bad_protos() -> list[tuple[mesos_pb2.Resource, str]]:
    out = [
        (_scalar_proto("cpus", float("nan")), "'scalar.value' nan: value must be a finite"),
        (_scalar_proto("cpus", -1), "'scalar.value' -1.0: value must be non-negative"),
        (_scalar_proto("cpus", float("inf")), "'scalar.value' inf"),
        (_scalar_proto("", 1), "field 'name' must be set"),
        (_scalar_proto("c p u", 1), "field 'name'"),
        (_scalar_proto("cpus", 1, [("eng", 0, None)]), "reservations\\[0\\].type"),
        (_scalar_proto("cpus", 1, [("*", _STATIC, None)]), "'\\*' cannot be reserved"),
        (_scalar_proto("cpus", 1, [("-e", _STATIC, None)]), "invalid role '-e'"),
        (
            _scalar_proto("cpus", 1, [("eng", _STATIC, None), ("ops", _DYNAMIC, None)]),
            "not a refinement",
        ),
        (_set_proto("s", ["a", "a"]), "duplicate"),
        (_set_proto("s", [""]), "empty item"),
        (mesos_pb2.Resource(name="cpus", type=mesos_pb2.Value.SCALAR), "must set 'scalar'"),
        (mesos_pb2.Resource(name="t", type=mesos_pb2.Value.TEXT), "TEXT"),
    ]
    ranges = mesos_pb2.Resource(name="ports", type=mesos_pb2.Value.RANGES)
    ranges.ranges.range.add(begin=5, end=1)
    out.append((ranges, "'ranges.range\\[0\\]' has begin 5 > end 1"))
    overlapping = mesos_pb2.Resource(name="ports", type=mesos_pb2.Value.RANGES)
    overlapping.ranges.range.add(begin=1, end=5)
    overlapping.ranges.range.add(begin=3, end=8)
    out.append((overlapping, "overlapping"))
    disk = _scalar_proto("disk", 1)
    disk.disk.persistence.id = "v1"
    out.append((disk, "'disk' is not supported"))
    labelled = _scalar_proto("cpus", 1, [("eng", _DYNAMIC, None)])
    labelled.reservations[0].labels.labels.add(key="k", value="v")
    out.append((labelled, "labels"))
    mismatched = _scalar_proto("cpus", 1, [("eng", _DYNAMIC, None)])
    mismatched.role = "ops"
    out.append((mismatched, "field 'role' 'ops' does not match"))
    return out


@pytest.mark.parametrize(("proto", "problem"), _bad_protos())
def test_from_protos_rejects_invalid(proto: mesos_pb2.Resource, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid resource #1 .*{problem}"):
        Resources.from_protos([_scalar_proto("mem", 1), proto])


def test_parse_json_array() -> None:
    text = """[
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 9}]}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 8}, "role": "ops"}
    ]"""
    assert R(text) == R("cpus:4;ports:[1-9];mem(ops):8")
    assert Resources.parse(text, default_role="eng") == R("cpus(eng):4;ports(eng):[1-9];mem(ops):8")
    with pytest.raises(ValueError, match="invalid resources JSON"):
        R("[{")
    with pytest.raises(ValueError, match="invalid resource #0 in JSON: not an object"):
        R("[1]")
    with pytest.raises(ValueError, match="invalid resource #0"):
        R('[{"name": "cpus", "bogus": 1}]')
    with pytest.raises(ValueError, match=r"scalar\.value"):
        R('[{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}]')


def test_public_names() -> None:
    assert set(resources_module.__all__) == {
        "KNOWN_NAMES",
        "likely_typos",
        "RangesValue",
        "Reservation",
        "ResourceKey",
        "Resources",
        "is_ancestor_or_self",
        "validate_role",
    }
    for name in resources_module.__all__:
        assert getattr(resources_module, name) is not None
