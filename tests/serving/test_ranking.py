"""Prioritisation: hand-computed rankings, qualifying counts and totals."""

from __future__ import annotations

import numpy as np
import pytest

from churnclv.serving.ranking import build_ranking, prioritise, qualifying

VAR = np.array([5.0, 50.0, 20.0, np.nan, 20.0, 1.0])
SEGMENT = np.array(["a", "b", "a", "b", "b", "a"], dtype=object)


def test_ranking_sorts_by_value_at_risk_with_ties_in_table_order():
    ranking = build_ranking(VAR, SEGMENT)
    assert ranking.everyone.positions.tolist() == [1, 2, 4, 0, 5, 3]
    assert ranking.by_segment["a"].positions.tolist() == [2, 0, 5]
    assert ranking.by_segment["b"].positions.tolist() == [1, 4, 3]
    assert ranking.everyone.cumulative[-1] == pytest.approx(96.0)  # NaN counts as nothing


def test_qualifying_is_the_positive_prefix():
    ladder = build_ranking(VAR, SEGMENT).everyone
    # value_at_risk x 0.1 - 1 > 0  <=>  value_at_risk > 10: 50, 20, 20
    assert qualifying(ladder, contact_cost=1.0, save_rate=0.1) == 3
    # exactly zero does not qualify: 20 x 0.1 - 2 = 0
    assert qualifying(ladder, contact_cost=2.0, save_rate=0.1) == 1
    assert qualifying(ladder, contact_cost=0.0, save_rate=0.5) == 5  # all finite positive values
    assert qualifying(ladder, contact_cost=100.0, save_rate=1.0) == 0


def test_prioritise_returns_the_best_and_both_totals():
    plan = prioritise(build_ranking(VAR, SEGMENT), limit=2, contact_cost=1.0, save_rate=0.1)
    assert plan.positions.tolist() == [1, 2]
    assert plan.expected_value_saved.tolist() == pytest.approx([4.0, 1.0])
    assert plan.qualifying == 3
    assert plan.saved_returned == pytest.approx(5.0)
    assert plan.saved_qualifying == pytest.approx(4.0 + 1.0 + 1.0)


def test_prioritise_by_segments_merges_in_value_order():
    ranking = build_ranking(VAR, SEGMENT)
    plan = prioritise(ranking, limit=10, contact_cost=0.0, save_rate=1.0, segments=["a", "b"])
    assert plan.positions.tolist() == ranking.everyone.positions[:5].tolist()
    only_a = prioritise(ranking, limit=10, contact_cost=0.0, save_rate=1.0, segments=["a"])
    assert only_a.positions.tolist() == [2, 0, 5]
    assert only_a.saved_qualifying == pytest.approx(26.0)


def test_nobody_qualifies_gives_an_empty_plan():
    plan = prioritise(build_ranking(VAR, SEGMENT), limit=5, contact_cost=1e9, save_rate=0.1)
    assert plan.positions.size == 0 and plan.qualifying == 0 and plan.saved_qualifying == 0.0


def test_prioritise_matches_a_brute_force_ranking():
    rng = np.random.default_rng(3)
    var = rng.gamma(1.0, 20.0, 5_000)
    segment = rng.choice(np.array(["x", "y", "z"], dtype=object), 5_000)
    plan = prioritise(build_ranking(var, segment), limit=50, contact_cost=2.0, save_rate=0.15, segments=["z", "x"])
    mask = np.isin(segment, ["x", "z"]) & (var * 0.15 - 2.0 > 0)
    order = np.lexsort((np.arange(var.size), -var))
    expected = order[mask[order]]
    assert plan.positions.tolist() == expected[:50].tolist()
    assert plan.qualifying == mask.sum()
    assert plan.saved_qualifying == pytest.approx((var[mask] * 0.15 - 2.0).sum())
