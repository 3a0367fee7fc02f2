"""Hypothesis properties of protos.resources.Resources: algebra, containment and round trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protos.resources import RangesValue, Reservation, Resources
from protos.v1 import mesos_pb2

_STACKS: list[tuple[Reservation, ...]] = [
    (),
    (Reservation("eng"),),
    (Reservation("eng/prod"),),
    (Reservation("eng"), Reservation("eng/prod", "dynamic", "alice")),
    (Reservation("ops", "dynamic"),),
    (Reservation("we:ird(role)", "dynamic", "p,q) %x;"),),
]
_SCALARS = ("cpus", "mem", "gpus")
_NAMES = (*_SCALARS, "ports", "bugs")
_ITEM = st.text(alphabet="ab, ;{}()[]%:\t", min_size=1, max_size=4)
_POINT = st.one_of(st.integers(0, 5000), st.integers(0, 2**64 - 1))
_PROTO_TYPE = {
    "static": mesos_pb2.Resource.ReservationInfo.STATIC,
    "dynamic": mesos_pb2.Resource.ReservationInfo.DYNAMIC,
}

Key = tuple[str, tuple[Reservation, ...], bool]
Value = int | RangesValue | frozenset[str]
FAST = settings(max_examples=60, deadline=None)


def _proto(key: Key, value: Value) -> mesos_pb2.Resource:
    name, stack, revocable = key
    proto = mesos_pb2.Resource(name=name)
    if isinstance(value, int):
        proto.type = mesos_pb2.Value.SCALAR
        proto.scalar.value = value / 1000
    elif isinstance(value, tuple):
        proto.type = mesos_pb2.Value.RANGES
        proto.ranges.range.extend(mesos_pb2.Value.Range(begin=b, end=e) for b, e in value)
    else:
        proto.type = mesos_pb2.Value.SET
        proto.set.item.extend(value)
    for r in stack:
        info = proto.reservations.add(role=r.role, type=_PROTO_TYPE[r.type])
        if r.principal is not None:
            info.principal = r.principal
    if revocable:
        proto.revocable.SetInParent()
    return proto


@st.composite
def disjoint_pairs(draw: st.DrawFn) -> tuple[Resources, Resources]:
    """Two Resources whose ranges and sets never overlap (scalars may share keys freely)."""
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(_NAMES), st.sampled_from(_STACKS), st.booleans()),
            max_size=6,
            unique=True,
        )
    )
    sides: tuple[list[mesos_pb2.Resource], list[mesos_pb2.Resource]] = ([], [])
    for key in keys:
        name = key[0]
        if name in _SCALARS:  # Thousandths, some zero (then no entry is stored).
            for side in sides:
                side.append(_proto(key, draw(st.integers(0, 10**9))))
            continue
        owner = st.integers(0, 1)
        if name == "ports":  # Disjoint intervals from distinct points, each given to one side.
            points = sorted(draw(st.sets(_POINT, max_size=10)))
            ranges: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
            for interval in zip(points[::2], points[1::2], strict=False):
                ranges[draw(owner)].append(interval)
            for side, mine in zip(sides, ranges, strict=True):
                side.append(_proto(key, tuple(mine)))
        else:
            items: tuple[set[str], set[str]] = (set(), set())
            for item in sorted(draw(st.sets(_ITEM, max_size=6))):
                items[draw(owner)].add(item)
            for side, mine_items in zip(sides, items, strict=True):
                side.append(_proto(key, frozenset(mine_items)))
    return Resources.from_protos(sides[0]), Resources.from_protos(sides[1])


resources = disjoint_pairs().map(lambda pair: pair[0])


@FAST
@given(disjoint_pairs())
def test_add_then_sub_gives_back_the_original(pair: tuple[Resources, Resources]) -> None:
    a, b = pair
    assert (a + b) - b == a
    assert (a + b) - a == b


@FAST
@given(resources, resources)
def test_sum_contains_both_and_commutes(a: Resources, b: Resources) -> None:
    assert (a + b).contains(a)
    assert (a + b).contains(b)
    assert a + b == b + a
    assert hash(a + b) == hash(b + a)


@FAST
@given(resources, resources)
def test_scalar_totals_add_exactly(a: Resources, b: Resources) -> None:
    total = a + b
    for name in _SCALARS:
        assert round(total.get(name) * 1000) == round(a.get(name) * 1000) + round(
            b.get(name) * 1000
        )


@FAST
@given(resources)
def test_text_round_trip(x: Resources) -> None:
    assert Resources.parse(str(x)) == x
    assert repr(x) == f"Resources({str(x)!r})"


@FAST
@given(resources)
def test_proto_round_trip(x: Resources) -> None:
    assert Resources.from_protos(x.to_protos()) == x


@FAST
@given(resources, resources)
def test_sub_is_never_negative_and_contained(a: Resources, b: Resources) -> None:
    rest = a - b
    for _, value in rest.items():
        assert value > 0 if isinstance(value, float) else len(value) > 0
    assert a.contains(rest)
    assert (a + b).contains(rest + b)


@FAST
@given(resources, resources)
def test_contains_means_nothing_left_over(a: Resources, b: Resources) -> None:
    assert a.contains(b) == (not (b - a))


@FAST
@given(resources, resources, resources)
def test_contains_is_reflexive_and_transitive(a: Resources, d: Resources, e: Resources) -> None:
    assert a.contains(a)
    b = a - d
    c = b - e
    assert a.contains(b)
    assert b.contains(c)
    assert a.contains(c)
    for x, y, z in ((a, d, e), (d, e, a), (a, b, e)):
        if x.contains(y) and y.contains(z):
            assert x.contains(z)


@FAST
@given(resources)
def test_partitions_add_back_up(x: Resources) -> None:
    assert x.unreserved() + x.reserved() == x
    assert x.revocable() + x.non_revocable() == x
    assert x.flatten().scalar_totals() == x.scalar_totals()
    assert x.allocatable_to("eng/prod").contains(x.allocatable_to("eng"))
    assert x.contains(x.allocatable_to("eng/prod"))
