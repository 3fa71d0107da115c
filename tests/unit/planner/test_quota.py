"""Tiered quota: budgets, guaranteed shares, borrowing, priority under contention, order independence."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inferencefleet.planner.memory import FleetState
from inferencefleet.planner.quota import QuotaRequest, QuotaUnavailable, allocate

TIERS = [
    {"name": "premium", "priority": 100, "guaranteed": {"gpus": 8}, "limit": {"gpus": 24}},
    {"name": "standard", "priority": 50, "guaranteed": {"gpus": 4}, "limit": {"dollarsPerHour": 40}},
    {"name": "free", "priority": 10, "limit": {"gpus": 8, "dollarsPerHour": 20}},
]
PRIORITY = {"premium": 100, "standard": 50, "free": 10}
GUARANTEED = {"premium": 8, "standard": 4, "free": 0}


def request(name, tier, replicas, gpus=1, gpu_type="H100-80GB", fixed=False, current=0):
    return QuotaRequest(("ns", name), tier, replicas, current, gpus, gpu_type, fixed)


def test_premium_and_free_contending_for_a_short_budget(make_quota):
    q = make_quota(gpus=16, tiers=TIERS)
    out = allocate(q, [request("chat", "premium", 12), request("batch", "free", 12)])
    assert out.grants[("ns", "chat")].granted == 12
    assert out.grants[("ns", "batch")].granted == 4
    free = out.grants[("ns", "batch")]
    assert free.limited and "FleetQuota default limit 16 GPUs" in free.reason
    usage = {t.name: t for t in out.tiers}
    assert (usage["premium"].gpus, usage["premium"].borrowed_gpus, usage["free"].capped_pools) == (12, 4, 1)


def test_guaranteed_share_beats_higher_tier_borrowing(make_quota):
    q = make_quota(gpus=12, tiers=TIERS)
    out = allocate(q, [request("chat", "premium", 20), request("api", "standard", 6)])
    assert out.grants[("ns", "api")].granted == 4  # its guarantee
    assert out.grants[("ns", "chat")].granted == 8


@pytest.mark.parametrize(("limit", "granted", "binding"), [
    ({"gpus": 8, "dollarsPerHour": 20}, (4, 4), "tier free limit 8 GPUs"),
    ({"dollarsPerHour": 12}, (3, 2), "tier free limit $12/h"),
])
def test_tier_limits_in_gpus_and_dollars_with_mixed_prices(make_quota, limit, granted, binding):
    q = make_quota(tiers=[{"name": "free", "priority": 1, "limit": limit}])
    out = allocate(q, [request("a", "free", 10, gpu_type="A100-80GB"), request("h", "free", 10)])
    a, h = out.grants[("ns", "a")], out.grants[("ns", "h")]
    assert (a.granted, h.granted) == granted  # A100 1.8 + H100 3.0 per replica, fair share
    assert binding in a.reason and binding in h.reason
    assert out.tiers[0].dollars_per_hour == pytest.approx(1.8 * a.granted + 3.0 * h.granted)


def test_multi_node_groups_are_granted_whole(make_quota):
    q = make_quota(gpus=40, tiers=TIERS)
    out = allocate(q, [request("ds", "premium", 3, gpus=16)])
    assert out.grants[("ns", "ds")].granted == 1  # tier premium limit 24 GPUs: a second 16-GPU group does not fit
    assert "tier premium limit 24 GPUs" in out.grants[("ns", "ds")].reason


def test_unknown_tier_and_unpriced_gpu_hold_at_current(make_quota):
    q = make_quota(tiers=TIERS)
    out = allocate(q, [request("x", "gold", 5, current=2), request("y", "free", 5, gpu_type="TPU", current=1)])
    assert out.grants[("ns", "x")].granted == 2 and "spec.tier: 'gold' is not a tier of FleetQuota" in out.grants[("ns", "x")].reason
    assert out.grants[("ns", "y")].granted == 1 and "no price" in out.grants[("ns", "y")].reason


def test_fixed_pools_are_charged_first_and_over_budget_is_reported(make_quota):
    q = make_quota(gpus=10, tiers=TIERS)
    out = allocate(q, [request("ext", "free", 12, fixed=True), request("m", "premium", 2)])
    assert out.grants[("ns", "ext")].granted == 12
    assert out.grants[("ns", "m")].granted == 0
    assert out.over_budget is not None and "10 GPUs" in out.over_budget


def test_cap_reports_headroom_when_not_limited(make_quota):
    q = make_quota(gpus=64, tiers=TIERS)
    grant = allocate(q, [request("chat", "premium", 4)]).grants[("ns", "chat")]
    assert (grant.granted, grant.cap, grant.limited) == (4, 24, False)
    assert grant.reason == "capped by nothing (tier premium allows up to 24)"


requests_strategy = st.lists(
    st.tuples(st.sampled_from(["premium", "standard", "free"]), st.integers(0, 12), st.sampled_from([1, 2, 4, 8, 16]),
              st.sampled_from(["H100-80GB", "A100-80GB"])),
    min_size=1, max_size=12,
)
budget_strategy = st.tuples(st.one_of(st.none(), st.integers(0, 80)), st.one_of(st.none(), st.floats(0, 250)))


def _requests(rows):
    return [request(f"p{i}", tier, n, gpus, gpu) for i, (tier, n, gpus, gpu) in enumerate(rows)]


PRICE = {"H100-80GB": 3.0, "A100-80GB": 1.8}


@settings(max_examples=150, deadline=None)
@given(rows=requests_strategy, budget=budget_strategy)
def test_property_budgets_never_exceeded(make_quota, rows, budget):
    q = make_quota(gpus=budget[0], dollars=budget[1], tiers=TIERS)
    reqs = _requests(rows)
    out = allocate(q, reqs)
    gpus = {t: 0 for t in PRIORITY}
    dollars = {t: 0.0 for t in PRIORITY}
    for r in reqs:
        g = out.grants[r.key]
        assert 0 <= g.granted <= r.replicas
        gpus[r.tier] += g.granted * r.gpus_per_replica
        dollars[r.tier] += g.granted * r.gpus_per_replica * PRICE[r.gpu_type]
    if budget[0] is not None:
        assert sum(gpus.values()) <= budget[0]
    if budget[1] is not None:
        assert sum(dollars.values()) <= budget[1] + 1e-6
    assert gpus["premium"] <= 24 and gpus["free"] <= 8
    assert dollars["standard"] <= 40 + 1e-6 and dollars["free"] <= 20 + 1e-6
    usage = {t.name: t for t in out.tiers}
    assert all(usage[t].gpus == gpus[t] for t in PRIORITY)


@settings(max_examples=150, deadline=None)
@given(rows=requests_strategy, gpus=st.integers(12, 80))
def test_property_guaranteed_share_honoured_when_asked(make_quota, rows, gpus):
    """With a fleet at least as big as the guarantees, a tier asking for single-GPU replicas gets its share."""
    q = make_quota(gpus=gpus, tiers=TIERS)
    reqs = [request(f"p{i}", tier, n, 1) for i, (tier, n, _, _) in enumerate(rows)]
    out = allocate(q, reqs)
    for tier, share in GUARANTEED.items():
        asked = sum(r.replicas for r in reqs if r.tier == tier)
        got = sum(out.grants[r.key].granted for r in reqs if r.tier == tier)
        assert got >= min(asked, share)


@settings(max_examples=150, deadline=None)
@given(rows=requests_strategy, budget=budget_strategy)
# A dollar budget with the lower tier's guarantee on pricier GPUs (found by hypothesis).
@example(rows=[("premium", 1, 1, "A100-80GB"), ("premium", 3, 4, "A100-80GB"), ("standard", 5, 1, "H100-80GB")],
         budget=(None, 24.0))
def test_property_higher_tier_never_loses_replicas_so_a_lower_tier_can_gain(make_quota, rows, budget):
    """If a higher tier is capped, no lower tier borrows what would have let it grow."""
    q = make_quota(gpus=budget[0], dollars=budget[1], tiers=TIERS)
    reqs = _requests(rows)
    out = allocate(q, reqs)
    for high in reqs:
        if not out.grants[high.key].limited:
            continue
        for low_tier, low_priority in PRIORITY.items():
            if low_priority >= PRIORITY[high.tier]:
                continue
            low = [r for r in reqs if r.tier == low_tier]
            borrowed_gpus = sum(out.grants[r.key].granted * r.gpus_per_replica for r in low) - GUARANTEED[low_tier]
            if borrowed_gpus <= 0:
                continue
            # Without the lower tier's requests the higher pool would get no more replicas.
            alone = allocate(q, [r for r in reqs if r.tier != low_tier])
            slack = _guarantee_slack(high, low_tier, low)
            assert alone.grants[high.key].granted <= out.grants[high.key].granted + slack


def _guarantee_slack(high, low_tier, low):
    """Replicas of ``high`` that the lower tier's guaranteed share may legitimately hold.

    The guarantee is in GPUs of the lower tier's types; under a dollar budget those dollars would
    buy more of a cheaper GPU, so the share is worth its price ratio in ``high``'s GPUs.
    """
    ratio = max([PRICE[r.gpu_type] / PRICE[high.gpu_type] for r in low] + [1.0])
    return math.ceil(GUARANTEED[low_tier] * ratio / high.gpus_per_replica - 1e-9)


@settings(max_examples=100, deadline=None)
@given(rows=requests_strategy, budget=budget_strategy, seed=st.integers(0, 1000))
def test_property_independent_of_pool_order(make_quota, rows, budget, seed):
    q = make_quota(gpus=budget[0], dollars=budget[1], tiers=TIERS)
    reqs = _requests(rows)
    shuffled = list(reqs)
    random.Random(seed).shuffle(shuffled)
    assert allocate(q, reqs) == allocate(q, shuffled)


@pytest.mark.parametrize("priority_order", [["premium", "standard", "free"], ["free", "standard", "premium"]])
def test_priority_decides_who_gives_back(make_quota, priority_order):
    tiers = [{"name": n, "priority": p} for n, p in zip(priority_order, (100, 50, 10), strict=True)]
    out = allocate(make_quota(gpus=6, tiers=tiers),
                   [request("a", "premium", 4), request("b", "standard", 4), request("c", "free", 4)])
    top, middle, bottom = (out.grants[("ns", {"premium": "a", "standard": "b", "free": "c"}[t])].granted
                           for t in priority_order)
    assert (top, middle, bottom) == (4, 2, 0)


def _capped_world(make_world, make_pool, make_quota):
    """A free pool wanting 11 replicas held at 8 by its tier's 8-GPU limit."""
    world = make_world([make_pool()], quota=make_quota(tiers=[{"name": "free", "priority": 10, "limit": {"gpus": 8}}]))
    for _ in range(20):
        world.step({"p": 200.0})
    assert len(world.replicas[("ns", "p")]) == 8
    return world


@pytest.mark.parametrize("why", ["not found", "invalid: spec.tiers[0].name: must not be empty"])
def test_an_unavailable_quota_keeps_the_last_granted_cap_and_says_why(make_world, make_pool, make_quota, why):
    world = _capped_world(make_world, make_pool, make_quota)
    world.quota = QuotaUnavailable("default", why)
    for _ in range(10):
        decision = world.step({"p": 200.0}).decision(("ns", "p"))
    assert decision.desired_replicas == 8 and decision.quota_cap == 8
    limited = decision.condition("QuotaLimited")
    assert limited is not None and (limited.status, limited.reason) == ("True", "QuotaUnavailable")
    assert f"FleetQuota 'default' is {why}: holding the last granted cap of 8 replicas" in limited.message
    assert f"FleetQuota 'default' is {why}" in decision.records[0].reason
    world.quota = make_quota()  # a valid quota without limits returns: the cap goes with it
    assert world.step({"p": 200.0}).decision(("ns", "p")).desired_replicas == 11


def test_an_unavailable_quota_still_lets_a_pool_scale_down(make_world, make_pool, make_quota):
    world = _capped_world(make_world, make_pool, make_quota)
    world.quota = QuotaUnavailable("default", "not found")
    counts = [world.step({"p": 5.0}).decision(("ns", "p")).desired_replicas for _ in range(80)]
    assert counts[-1] < 8


def test_a_pool_never_granted_holds_what_it_has_while_the_quota_is_unavailable(make_world, make_pool):
    world = make_world([make_pool(replicas={"min": 2, "max": 20})], quota=QuotaUnavailable("default", "not found"))
    decision = world.step({"p": 200.0}).decision(("ns", "p"))
    assert decision.desired_replicas == 2
    assert "holding the replicas it has (no grant remembered) of 2 replicas" in decision.quota_reason


def test_the_last_grant_survives_the_state_file(make_world, make_pool, make_quota):
    world = _capped_world(make_world, make_pool, make_quota)
    restored = FleetState.from_json(world.state.to_json())
    assert restored.memory(("ns", "p")).quota_granted == 8


def test_pools_of_another_quota_are_not_held(make_world, make_pool):
    world = make_world([make_pool(quotaRef="other")], quota=QuotaUnavailable("default", "not found"))
    decision = world.step({"p": 200.0}).decision(("ns", "p"))
    assert decision.desired_replicas > 1 and "quotaRef 'other' is not FleetQuota 'default'" in decision.quota_reason


def test_pools_the_planner_does_not_control_keep_their_count_while_the_quota_is_unavailable(make_world, make_pool):
    world = make_world([make_pool(replicas={"min": 1, "max": 20, "count": 5}, autoscaling={"mode": "External"})],
                       quota=QuotaUnavailable("default", "not found"))
    decision = world.step({"p": 200.0}).decision(("ns", "p"))
    assert decision.desired_replicas == 5 and decision.quota_cap is None
    assert decision.condition("QuotaLimited").status == "False"  # type: ignore[union-attr]
    assert "the planner does not control this pool's replicas" in decision.quota_reason
