"""Who to contact first: rank customers by the expected value a touchpoint saves.

A touchpoint to a customer saves ``value_at_risk × save_rate − contact_cost`` (currency) in
expectation; only customers for whom that is positive qualify. With ``save_rate`` and
``contact_cost`` the same for everyone, that order is the order of ``value_at_risk``, so the
ranking is sorted once when the score table is loaded (:func:`build_ranking`) and a request is a
prefix scan (:func:`prioritise`): O(limit × segments), whatever the number of customers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ladder:
    """Customers by decreasing value at risk: row positions, values, and running totals."""

    positions: np.ndarray  # int64 row positions in the score table
    value_at_risk: np.ndarray  # float64, decreasing; NaN became -inf (never qualifies)
    cumulative: np.ndarray  # float64, len n + 1: cumulative[k] = sum of the first k values
    negated: np.ndarray  # -value_at_risk, increasing: what np.searchsorted needs


@dataclass(frozen=True)
class Ranking:
    everyone: Ladder
    by_segment: dict[str, Ladder]


@dataclass(frozen=True)
class Plan:
    """The chosen customers (best first) and the totals of the summary."""

    positions: np.ndarray
    value_at_risk: np.ndarray
    expected_value_saved: np.ndarray
    qualifying: int
    saved_returned: float
    saved_qualifying: float


def _ladder(positions: np.ndarray, value_at_risk: np.ndarray) -> Ladder:
    finite = np.isfinite(value_at_risk)
    return Ladder(positions, value_at_risk,
                  np.concatenate([[0.0], np.cumsum(np.where(finite, value_at_risk, 0.0))]), -value_at_risk)


def build_ranking(value_at_risk: np.ndarray, segment: np.ndarray) -> Ranking:
    """Sort once by value at risk (decreasing; ties keep table order), overall and per segment."""
    var = np.where(np.isnan(value_at_risk), -np.inf, value_at_risk.astype(float))
    order = np.argsort(-var, kind="stable")
    ranked_var, ranked_segment = var[order], segment[order]
    by_segment = {
        str(name): _ladder(order[mask], ranked_var[mask])
        for name in np.unique(ranked_segment)
        for mask in [ranked_segment == name]
    }
    return Ranking(_ladder(order, ranked_var), by_segment)


def qualifying(ladder: Ladder, *, contact_cost: float, save_rate: float) -> int:
    """How many customers of a ladder have ``value_at_risk × save_rate − contact_cost > 0``."""
    if save_rate <= 0:
        return 0
    saved_desc = ladder.value_at_risk  # decreasing, so the qualifying ones are a prefix
    k = int(np.searchsorted(ladder.negated, -(contact_cost / save_rate), side="left"))
    while k > 0 and not saved_desc[k - 1] * save_rate - contact_cost > 0:  # floating-point edges
        k -= 1
    while k < len(saved_desc) and saved_desc[k] * save_rate - contact_cost > 0:
        k += 1
    return k


def rate_of(save_rate: float | Mapping[str, float], segment: str) -> float:
    """The save rate of ``segment``: one number for everyone, or a segment's own (0 when it has none)."""
    return float(save_rate) if not isinstance(save_rate, Mapping) else float(save_rate.get(segment, 0.0))


def plan_ladders(ranking: Ranking, *, save_rate: float | Mapping[str, float],
                 segments: list[str] | None) -> list[tuple[Ladder, float]]:
    """The ladders a plan draws from, each with its save rate: everyone at one rate, or per segment."""
    if segments is None and not isinstance(save_rate, Mapping):
        return [(ranking.everyone, float(save_rate))]
    names = list(ranking.by_segment) if segments is None else list(dict.fromkeys(segments))
    return [(ranking.by_segment[s], rate_of(save_rate, s)) for s in names if s in ranking.by_segment]


def prioritise(ranking: Ranking, *, limit: int, contact_cost: float, save_rate: float | Mapping[str, float],
               segments: list[str] | None = None) -> Plan:
    """The ``limit`` customers who save the most per touchpoint, among ``segments`` (default all).

    ``save_rate`` is one rate for everyone or a rate per segment (learned from campaigns); with one rate
    the order is that of value at risk, with rates per segment that of ``value_at_risk × rate``.
    """
    pairs = plan_ladders(ranking, save_rate=save_rate, segments=segments)
    counts = [qualifying(ladder, contact_cost=contact_cost, save_rate=rate) for ladder, rate in pairs]
    heads = [(ladder.positions[: min(k, limit)], ladder.value_at_risk[: min(k, limit)],
              np.full(min(k, limit), rate)) for (ladder, rate), k in zip(pairs, counts)]
    positions = np.concatenate([p for p, _, _ in heads] + [np.empty(0, np.int64)])
    var = np.concatenate([v for _, v, _ in heads] + [np.empty(0, float)])
    rates = np.concatenate([r for _, _, r in heads] + [np.empty(0, float)])
    saved = var * rates - contact_cost
    best = np.lexsort((positions, -saved))[:limit]  # ties in table order, as in the overall ladder
    positions, var, saved = positions[best], var[best], saved[best]
    total = sum(rate * ladder.cumulative[k] - contact_cost * k for (ladder, rate), k in zip(pairs, counts))
    return Plan(positions, var, saved, int(sum(counts)), float(saved.sum()), float(total))


def membership(ranking: Ranking, listed: np.ndarray, *, limit: int, contact_cost: float,
               save_rate: float | Mapping[str, float], segments: list[str] | None, slots: np.ndarray,
               factors: np.ndarray) -> np.ndarray:
    """Each ``listed`` customer's share of parameter draws under which the same plan lists them too (NaN for a
    customer without values per draw).

    ``slots``: per score-table row, its row of ``factors`` (-1 where the table keeps no values per draw);
    ``factors``: per kept customer and draw, the value at risk under the draw over the point value at risk. A
    draw moves the CLV, so every plan's key (value at risk × rate, or CLV × uplift) moves by the same factor:
    under draw k the plan is the ``limit`` highest ``key × factor − contact_cost`` above 0 among the kept
    customers of the plan's ladders (the suppressed and left-out ones are not in them)."""
    keys, where, rows = [], [], []
    for ladder, rate in plan_ladders(ranking, save_rate=save_rate, segments=segments):
        slot = slots[ladder.positions]
        kept = (slot >= 0) & np.isfinite(ladder.value_at_risk)
        if rate > 0 and kept.any():
            keys.append(ladder.value_at_risk[kept] * rate)
            where.append(slot[kept])
            rows.append(ladder.positions[kept])
    out = np.full(len(listed), np.nan)
    if not keys:
        return out
    key, slot, row = np.concatenate(keys), np.concatenate(where), np.concatenate(rows)
    saved = key[:, None] * factors[slot] - contact_cost  # kept customers x draws
    saved = np.where(saved > 0, saved, -np.inf)
    if limit < len(saved):
        kth = -np.partition(-saved, limit - 1, axis=0)[limit - 1]  # the limit-th highest of each draw
        inside = (saved >= kth) & np.isfinite(saved)
    else:
        inside = np.isfinite(saved)
    share = inside.mean(axis=1)
    order = np.argsort(row, kind="stable")
    found = np.clip(np.searchsorted(row[order], listed), 0, len(row) - 1)
    hit = row[order][found] == listed
    out[hit] = share[order][found[hit]]
    return out
