"""Property tests of the allocator over random event sequences.

* A state machine drives every event the master can send (agents and frameworks coming, going,
  (de)activating; suppress, revive; quota; weights; tasks ending) with model frameworks that
  launch one fixed-size task from each offer and decline the rest. After every step
  ``validate()`` holds, the allocator's books match the model's tasks, and no cycle offers a
  resource twice (offers plus running tasks fit in each agent).
* With equal demands and weights, frameworks that keep taking one task per offer until the
  cluster is full end with dominant shares within one task's share of each other.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from master.allocator import GPU_RESOURCES, HierarchicalAllocator, Offers
from protos.resources import Resources, is_ancestor_or_self

TASK = Resources.parse("cpus:1;mem:128")
ROLES = ("a", "b", "a/x")
Task = tuple[str, str, str, Resources]  # framework, role, agent, resources


class AllocatorMachine(RuleBasedStateMachine):
    """Random events against one allocator, with frameworks that run one task per offer."""

    def __init__(self) -> None:
        super().__init__()
        self.alloc = HierarchicalAllocator(random.Random(0), allocation_interval=1.0)
        self.now = 0.0
        self.serial = 0
        self.totals: dict[str, Resources] = {}
        self.frameworks: dict[str, frozenset[str]] = {}
        self.tasks: list[Task] = []

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    # -- agents --

    @rule(
        cpus=st.integers(1, 8),
        mem=st.sampled_from([64, 256, 1024, 4096]),
        gpu=st.booleans(),
        reserved_to=st.sampled_from([None, "a", "a/x", "b"]),
    )
    def add_agent(self, cpus: int, mem: int, gpu: bool, reserved_to: str | None) -> None:
        text = f"cpus:{cpus};mem:{mem};ports:[31000-31009]"
        if gpu:
            text += ";gpus:1"
        if reserved_to is not None:
            text += f";cpus({reserved_to}):1;mem({reserved_to}):128"
        agent_id = self._next("agent")
        self.alloc.add_agent(agent_id, Resources.parse(text))
        self.totals[agent_id] = Resources.parse(text)

    @precondition(lambda self: self.totals)
    @rule(data=st.data())
    def remove_agent(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.totals)))
        self.alloc.remove_agent(agent_id)
        del self.totals[agent_id]
        self.tasks = [t for t in self.tasks if t[2] != agent_id]

    @precondition(lambda self: self.totals)
    @rule(data=st.data(), active=st.booleans())
    def toggle_agent(self, data: st.DataObject, active: bool) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.totals)))
        if active:
            self.alloc.activate_agent(agent_id)
        else:
            self.alloc.deactivate_agent(agent_id)

    # -- frameworks --

    @rule(roles=st.sets(st.sampled_from(ROLES), min_size=1), gpu=st.booleans())
    def add_framework(self, roles: set[str], gpu: bool) -> None:
        framework_id = self._next("fw")
        self.alloc.add_framework(framework_id, roles, [GPU_RESOURCES] if gpu else [], self.now)
        self.frameworks[framework_id] = frozenset(roles)

    @precondition(lambda self: self.frameworks)
    @rule(data=st.data())
    def remove_framework(self, data: st.DataObject) -> None:
        framework_id = data.draw(st.sampled_from(sorted(self.frameworks)))
        self.alloc.remove_framework(framework_id)
        del self.frameworks[framework_id]
        self.tasks = [t for t in self.tasks if t[0] != framework_id]

    @precondition(lambda self: self.frameworks)
    @rule(data=st.data(), roles=st.sets(st.sampled_from(ROLES), min_size=1))
    def update_framework_roles(self, data: st.DataObject, roles: set[str]) -> None:
        framework_id = data.draw(st.sampled_from(sorted(self.frameworks)))
        self.alloc.update_framework(framework_id, roles)
        self.frameworks[framework_id] = frozenset(roles)

    @precondition(lambda self: self.frameworks)
    @rule(data=st.data(), active=st.booleans())
    def toggle_framework(self, data: st.DataObject, active: bool) -> None:
        framework_id = data.draw(st.sampled_from(sorted(self.frameworks)))
        if active:
            self.alloc.activate_framework(framework_id)
        else:
            self.alloc.deactivate_framework(framework_id)

    @precondition(lambda self: self.frameworks)
    @rule(data=st.data(), suppress=st.booleans())
    def suppress_or_revive(self, data: st.DataObject, suppress: bool) -> None:
        framework_id = data.draw(st.sampled_from(sorted(self.frameworks)))
        roles = data.draw(st.sets(st.sampled_from(sorted(self.frameworks[framework_id]))))
        if suppress:
            self.alloc.suppress(framework_id, roles)
        else:
            self.alloc.revive(framework_id, roles)

    # -- policy --

    @rule(
        role=st.sampled_from(["a", "b"]),
        guarantee=st.integers(0, 6),
        limit=st.one_of(st.none(), st.integers(0, 12)),
        force=st.booleans(),
    )
    def update_quota(self, role: str, guarantee: int, limit: int | None, force: bool) -> None:
        guarantees = Resources.scalars(cpus=guarantee)
        limits = {} if limit is None else {"cpus": float(limit), "mem": limit * 512.0}
        refused = limit is not None and guarantee > limit
        refused = refused or (not force and limit is not None and self._over(role, limit))
        if refused:
            with pytest.raises(ValueError, match=r"exceeds limit|use force"):
                self.alloc.update_quota(role, guarantees, limits, force=force)
        else:
            self.alloc.update_quota(role, guarantees, limits, force=force)

    def _over(self, role: str, limit: int) -> bool:
        consumed = self.alloc.quota_consumed(role)
        return consumed.get("cpus", 0) > limit or consumed.get("mem", 0) > limit * 512

    @rule(role=st.sampled_from(ROLES), weight=st.sampled_from([0.5, 1.0, 2.0, 3.0]))
    def update_weights(self, role: str, weight: float) -> None:
        self.alloc.update_weights({role: weight})

    # -- the cycle and the frameworks' answers --

    @rule(refuse=st.sampled_from([0.0, None, 2.0]), step=st.sampled_from([0.5, 1.0, 3.0]))
    def allocate(self, refuse: float | None, step: float) -> None:
        self.now += step
        offers = self.alloc.allocate(self.now)
        self._check_offers(offers)
        for framework_id, by_role in offers.items():
            for role, by_agent in by_role.items():
                for agent_id, offer in by_agent.items():
                    declined = offer
                    if offer.contains(TASK):
                        self.tasks.append((framework_id, role, agent_id, TASK))
                        declined = offer - TASK
                    self.alloc.recover_resources(
                        framework_id, agent_id, declined, refuse, self.now, role=role
                    )

    def _check_offers(self, offers: Offers) -> None:
        in_use: dict[str, Resources] = {}
        for _, _, agent_id, resources in self.tasks:
            in_use[agent_id] = in_use.get(agent_id, Resources.EMPTY) + resources
        for framework_id, by_role in offers.items():
            roles = self.frameworks[framework_id]
            for role, by_agent in by_role.items():
                assert role in roles
                for agent_id, offer in by_agent.items():
                    assert offer
                    for reserved_to in offer.reservation_roles():
                        assert is_ancestor_or_self(reserved_to, role)
                    in_use[agent_id] = in_use.get(agent_id, Resources.EMPTY) + offer
        for agent_id, used in in_use.items():
            assert self.totals[agent_id].contains(used), f"{agent_id} offered twice: {used}"

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def finish_task(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.tasks) - 1))
        framework_id, role, agent_id, resources = self.tasks.pop(index)
        self.alloc.recover_resources(framework_id, agent_id, resources, 0, self.now, role=role)

    # -- invariants --

    @invariant()
    def books_are_consistent(self) -> None:
        self.alloc.validate()
        expected: dict[str, dict[str, dict[str, Resources]]] = {}
        for framework_id, role, agent_id, resources in self.tasks:
            by_agent = expected.setdefault(framework_id, {}).setdefault(role, {})
            by_agent[agent_id] = by_agent.get(agent_id, Resources.EMPTY) + resources
        for framework_id in self.frameworks:
            assert self.alloc.allocation_of(framework_id) == expected.get(framework_id, {})

    @invariant()
    def explanations_never_fail(self) -> None:
        for framework_id in self.frameworks:
            for reason in self.alloc.explain(framework_id):
                assert reason.message


TestAllocatorMachine = AllocatorMachine.TestCase
TestAllocatorMachine.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


@settings(max_examples=150, deadline=None)
@given(
    frameworks=st.integers(2, 6),
    sizes=st.lists(st.integers(1, 8), min_size=1, max_size=16),
    seed=st.integers(0, 2**16),
    own_roles=st.booleans(),
)
def test_equal_frameworks_end_within_one_task_of_each_other(
    frameworks: int, sizes: list[int], seed: int, own_roles: bool
) -> None:
    """Frameworks share one role, or each has its own role of equal weight."""
    alloc = HierarchicalAllocator(random.Random(seed))
    ids = [f"fw{i}" for i in range(frameworks)]
    role_of = {f: (f"role-{f}" if own_roles else "*") for f in ids}
    for framework_id in ids:
        alloc.add_framework(framework_id, [role_of[framework_id]])
    for i, k in enumerate(sizes):
        alloc.add_agent(f"agent{i}", Resources.scalars(cpus=k, mem=128 * k))
    now = 0.0
    while True:
        now += 1.0
        launched = 0
        for framework_id, by_role in alloc.allocate(now).items():
            for agent_id, offer in by_role[role_of[framework_id]].items():
                declined = offer
                if offer.contains(TASK):
                    launched += 1
                    declined = offer - TASK
                alloc.recover_resources(framework_id, agent_id, declined, 0, now)
        if not launched:
            break
    alloc.validate()
    task_share = TASK.dominant_share(Resources.scalars(cpus=sum(sizes), mem=128 * sum(sizes)))
    shares = [alloc.framework_share(f)[role_of[f]] for f in ids]
    assert max(shares) - min(shares) <= task_share + 1e-9, shares
    running = sum(
        resources.get("cpus")
        for framework_id in ids
        for by_agent in alloc.allocation_of(framework_id).values()
        for resources in by_agent.values()
    )
    assert running == sum(sizes)  # the cluster is full: every agent holds k tasks
