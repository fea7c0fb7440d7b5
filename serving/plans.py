"""A contact plan: the answer of ``/prioritise`` and its profit curve (``/profit_curve``), on one ranking.

Both use :mod:`serving.ranking`: the plan is :func:`serving.ranking.prioritise`, and the curve reads the
same per-segment ladders (customers by decreasing value at risk, with running totals), so the chosen point
of a curve is exactly the plan ``/prioritise`` returns for the same inputs. The page (:mod:`serving.page`)
calls these functions too, so what it shows is what a CRM integration gets.
"""

from __future__ import annotations

import numpy as np

from serving import ranking
from serving.schemas import (
    CurvePoint,
    PrioritiseRequest,
    PrioritiseResponse,
    PrioritiseSummary,
    ProfitCurveRequest,
    ProfitCurveResponse,
)
from serving.table import ScoreTable, check_segments, prioritised


def plan_of(table: ScoreTable, request: PrioritiseRequest) -> tuple[ranking.Plan, list[str]]:
    """The plan of a request (422 for an unknown segment) and the segments it covered."""
    check_segments(table, request.segments)
    segments = table.contactable if request.segments is None else request.segments
    plan = ranking.prioritise(table.ranking, limit=request.limit, contact_cost=request.contact_cost,
                              save_rate=request.save_rate, segments=segments)
    return plan, segments


def prioritise_response(table: ScoreTable, request: PrioritiseRequest, *, rows: slice = slice(None)) -> PrioritiseResponse:
    """What ``POST /prioritise`` answers; ``rows`` keeps only those customers of the list (a page of it),
    the summary still that of the whole plan."""
    plan, segments = plan_of(table, request)
    summary = PrioritiseSummary(qualifying=plan.qualifying, returned=len(plan.positions),
                                expected_value_saved_returned=plan.saved_returned,
                                expected_value_saved_qualifying=plan.saved_qualifying,
                                contact_cost=request.contact_cost, save_rate=request.save_rate, segments=segments)
    start = rows.indices(len(plan.positions))[0]
    page = ranking.Plan(plan.positions[rows], plan.value_at_risk[rows], plan.expected_value_saved[rows],
                        plan.qualifying, plan.saved_returned, plan.saved_qualifying)
    customers = [{**row, "rank": row["rank"] + start} for row in prioritised(table, page)]
    return PrioritiseResponse(as_of=table.as_of, model_version=table.model_version, customers=customers,
                              summary=summary)


def curve(ladders: list[ranking.Ladder], *, contact_cost: float, save_rate: float,
          points: int) -> tuple[np.ndarray, np.ndarray]:
    """Contacts (best first, over all ``ladders`` merged) and the expected net value of contacting them:
    ``save_rate × (sum of their value at risk) − contact_cost × contacts``, from 0 contacts to everyone.

    The curve is read at thresholds of value at risk (everyone at or above one is contacted): ``points``
    thresholds taken evenly along each ladder, so each point is exact, and the points are dense where
    the customers are. O(segments × points × log customers).
    """
    finite = [ladder for ladder in ladders if len(ladder.value_at_risk)]
    counts = [int(np.isfinite(ladder.value_at_risk).sum()) for ladder in finite]
    thresholds = np.unique(np.concatenate(
        [ladder.value_at_risk[np.linspace(0, n - 1, min(n, points)).round().astype(int)]
         for ladder, n in zip(finite, counts) if n] + [np.empty(0)]))[::-1]
    contacts = np.zeros(len(thresholds) + 1, dtype=np.int64)
    value = np.zeros(len(thresholds) + 1)
    for ladder in finite:
        k = np.searchsorted(ladder.negated, -thresholds, side="right")  # customers at or above each threshold
        contacts[1:] += k
        value[1:] += ladder.cumulative[k]
    return contacts, save_rate * value - contact_cost * contacts


def thin(contacts: np.ndarray, net: np.ndarray, points: int) -> np.ndarray:
    """Indices of at most ``points`` of a curve, evenly spread, keeping its first, last and highest point."""
    if len(contacts) <= points:
        return np.arange(len(contacts))
    keep = np.linspace(0, len(contacts) - 1, points - 1).round().astype(int)
    return np.unique(np.concatenate([keep, [int(np.argmax(net))]]))


def profit_curve_response(table: ScoreTable, request: ProfitCurveRequest) -> ProfitCurveResponse:
    """What ``POST /profit_curve`` answers: the curve of the segments, the request's plan and the best plan."""
    plan, segments = plan_of(table, request)
    ladders = [table.ranking.by_segment[s] for s in dict.fromkeys(segments)]
    contacts, net = curve(ladders, contact_cost=request.contact_cost, save_rate=request.save_rate,
                          points=request.points)
    shown = thin(contacts, net, request.points)
    return ProfitCurveResponse(
        as_of=table.as_of, model_version=table.model_version, customers=int(contacts[-1]),
        points=[CurvePoint(contacts=int(c), expected_net_value=float(v)) for c, v in zip(contacts[shown], net[shown])],
        chosen=CurvePoint(contacts=len(plan.positions), expected_net_value=plan.saved_returned),
        best=CurvePoint(contacts=plan.qualifying, expected_net_value=plan.saved_qualifying))
