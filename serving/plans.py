"""A contact plan: the answer of ``/prioritise`` and its profit curve (``/profit_curve``), on one ranking.

The ranking is by value at risk × the segment's save rate, or, when a per-customer uplift model is
served (:mod:`serving.uplift`) and the request sets no save rate, by ``clv × uplift`` (the same ladders,
with the uplift gain in place of value at risk and a rate of 1), the sleeping dogs left out and counted.

Both use :mod:`serving.ranking`: the plan is :func:`serving.ranking.prioritise`, and the curve reads the
same per-segment ladders (customers by decreasing value at risk, with running totals), so the chosen point
of a curve is exactly the plan ``/prioritise`` returns for the same inputs. The page (:mod:`serving.page`)
calls these functions too, so what it shows is what a CRM integration gets.
"""

from __future__ import annotations

import numpy as np

from churnclv.scoring.uplift import UPLIFT_MODEL_NAME
from churnclv.serving import ranking
from churnclv.serving.schemas import (
    CurvePoint,
    PrioritiseRequest,
    PrioritiseResponse,
    PrioritiseSummary,
    ProfitCurveRequest,
    ProfitCurveResponse,
)
from churnclv.serving.table import ScoreTable, check_segments, prioritised
from churnclv.serving.targeting import UpliftView, View, prior_rates, rates_records, uplift_note


def by_uplift(view: View | None, request: PrioritiseRequest) -> UpliftView | None:
    """The uplift model's ranking when it ranks this plan: one is served and the request sets no save rate."""
    return None if view is None or request.save_rate is not None else view.by_uplift


def uplift_summary(ranked: UpliftView, chosen: list[str], left_out: list[str]) -> tuple[int, str]:
    """The sleeping dogs a plan by uplift leaves out among its segments, and what the answer says of it."""
    own = sum(ranked.dogs.get(s, 0) for s in chosen)
    in_segments = sum(ranked.customers.get(s, 0) for s in left_out)
    qini = ranked.metrics.get("qini")
    judged = "" if qini is None else f"; Qini {qini:.4f} on campaigns it did not see"
    where = f" and {in_segments:,} in segment(s) {', '.join(left_out)} where contacts lowered retention" if left_out else ""
    return own + in_segments, (
        f"the per-customer uplift model ({UPLIFT_MODEL_NAME} v{ranked.version}{judged}) ranks the plan by "
        f"clv × uplift − contact cost; {own + in_segments:,} sleeping dog(s) left out: {own:,} whose uplift is "
        f"credibly negative{where}")


def rates_of(table: ScoreTable, request: PrioritiseRequest, view: View | None):
    """The segments' rates (the view's learned ones, else the prior's) and the save rate a plan ranks with: the
    request's, else one per segment."""
    rates = view.rates if view is not None else prior_rates(sorted(table.ranking.by_segment))
    save_rate = request.save_rate if request.save_rate is not None else dict(
        zip(rates["segment"], rates["rate"].astype(float)))
    return rates, save_rate


def plan_of(table: ScoreTable, request: PrioritiseRequest,
            view: View | None = None) -> tuple[ranking.Plan, list[str], PrioritiseSummary]:
    """The plan of a request (422 for an unknown segment), the segments it covered and its summary.

    ``view`` (:meth:`serving.targeting.Targeting.view`) leaves suppressed customers out and gives the
    learned save rates per segment, used unless the request sets one; segments where contacts lowered
    retention are then left out. When the view carries the served uplift model's ranking (and the
    request sets no save rate), the plan ranks by ``clv × uplift − contact_cost`` and leaves out the
    sleeping dogs, counted in the summary. Without a view: every customer, the prior's rates.
    """
    check_segments(table, request.segments)
    segments = table.contactable if request.segments is None else request.segments
    rates, save_rate = rates_of(table, request, view)
    left_out = [] if request.save_rate is not None else [s for s in rates.loc[rates["harmful"], "segment"]
                                                           if s in segments]
    chosen = [s for s in segments if s not in left_out]
    ranked = table.ranking if view is None else view.ranking
    uplift = by_uplift(view, request)
    if uplift is not None:
        plan = ranking.prioritise(uplift.ranking, limit=request.limit, contact_cost=request.contact_cost,
                                  save_rate=1.0, segments=chosen)
        dogs, note = uplift_summary(uplift, chosen, left_out)
    else:
        plan = ranking.prioritise(ranked, limit=request.limit, contact_cost=request.contact_cost,
                                  save_rate=save_rate, segments=chosen)
        dogs = sum(int(np.isfinite(ranked.by_segment[s].value_at_risk).sum()) for s in left_out)
        note = uplift_note(0 if view is None else view.outcomes, treated=None if view is None else view.treated)
        if view is not None and view.by_uplift is not None:
            note = (f"the request's save_rate ranks the plan, not the per-customer uplift model ({UPLIFT_MODEL_NAME} "
                    f"v{view.by_uplift.version}): leave save_rate out to rank by uplift")
    listed = [r for r in rates_records(rates) if r["segment"] in segments]
    if request.save_rate is not None:
        listed = [{**r, "rate": request.save_rate, "low": request.save_rate, "high": request.save_rate,
                   "source": "set"} for r in listed]
    summary = PrioritiseSummary(
        qualifying=plan.qualifying, returned=len(plan.positions), expected_value_saved_returned=plan.saved_returned,
        expected_value_saved_qualifying=plan.saved_qualifying, contact_cost=request.contact_cost,
        save_rate=request.save_rate, segments=segments, save_rates=listed, left_out_segments=left_out,
        suppressed=0 if view is None else view.suppressed, uplift=note,
        ranked_by="save_rates" if uplift is None else "uplift", sleeping_dogs=dogs,
        warnings=[] if view is None else list(view.notes))
    return plan, chosen, summary


def prioritise_response(table: ScoreTable, request: PrioritiseRequest, *, rows: slice = slice(None),
                        view: View | None = None) -> PrioritiseResponse:
    """What ``POST /prioritise`` answers; ``rows`` keeps only those customers of the list (a page of it),
    the summary still that of the whole plan."""
    plan, chosen, summary = plan_of(table, request, view)
    start = rows.indices(len(plan.positions))[0]
    page = ranking.Plan(plan.positions[rows], plan.value_at_risk[rows], plan.expected_value_saved[rows],
                        plan.qualifying, plan.saved_returned, plan.saved_qualifying)
    uplift = by_uplift(view, request)
    extra = [{}] * len(page.positions) if uplift is None else [
        {"uplift": u} for u in uplift.uplift[page.positions].tolist()]
    sure, note = list_membership(table, request, view, chosen, page.positions)
    customers = [{**row, **more, "rank": row["rank"] + start, "membership": m}
                 for row, more, m in zip(prioritised(table, page), extra, sure)]
    return PrioritiseResponse(as_of=table.as_of, model_version=table.model_version, customers=customers,
                              summary=summary.model_copy(update={"membership": note}))


def list_membership(table: ScoreTable, request: PrioritiseRequest, view: View | None, chosen: list[str],
                    listed: np.ndarray) -> tuple[list[float | None], str]:
    """Per ``listed`` customer (row positions), the share of parameter draws under which the plan of ``request``
    lists them too (:func:`serving.ranking.membership`, the same ladders and rates as :func:`plan_of`; ``chosen``: its
    segments), and what
    it refers to in words; Nones and why when the score table keeps no values per draw."""
    draws = table.draws
    if draws is None:
        return [None] * len(listed), ("no membership: this score table keeps no values per parameter draw (written "
                                      "before them, or by score --dask); rescore with churnclv score")
    uplift = by_uplift(view, request)
    _, save_rate = rates_of(table, request, view)
    ranked = uplift.ranking if uplift is not None else table.ranking if view is None else view.ranking
    share = ranking.membership(ranked, listed, limit=request.limit, contact_cost=request.contact_cost,
                               save_rate=1.0 if uplift is not None else save_rate, segments=chosen,
                               slots=draws.slots, factors=draws.factors)
    key = "clv × uplift" if uplift is not None else "value at risk × save rate"
    note = (f"membership: the share of {draws.count} draws of the model's parameters under which this plan lists "
            f"the customer too (ranked by {key}, the churn probability{' and uplift' if uplift is not None else ''} "
            f"held); compared among the {draws.kept:,} customers of highest value at risk")
    missing = int(np.isnan(share).sum())
    if missing:
        note += f"; {missing:,} listed customer(s) beyond them have none"
    return [None if np.isnan(v) else float(v) for v in share.tolist()], note


def curve(ladders: list[ranking.Ladder], *, contact_cost: float, save_rate: float | list[float],
          points: int) -> tuple[np.ndarray, np.ndarray]:
    """Contacts (best first, over all ``ladders`` merged) and the expected net value of contacting them:
    ``sum of save_rate × value at risk − contact_cost × contacts``, from 0 contacts to everyone.

    ``save_rate`` is one rate, or one per ladder (a segment's learned rate). The curve is read at
    thresholds of value saved per contact (everyone at or above one is contacted): ``points``
    thresholds taken evenly along each ladder, so each point is exact, and the points are dense where
    the customers are. O(customers) for a rate other than 1 (one product per customer), else
    O(segments × points × log customers).
    """
    rates = [float(save_rate)] * len(ladders) if np.isscalar(save_rate) else [float(r) for r in save_rate]
    pairs = [(ladder, rate) for ladder, rate in zip(ladders, rates) if len(ladder.value_at_risk) and rate > 0]
    counts = [int(np.isfinite(ladder.value_at_risk).sum()) for ladder, _ in pairs]
    thresholds = np.unique(np.concatenate(
        [rate * ladder.value_at_risk[np.linspace(0, n - 1, min(n, points)).round().astype(int)]
         for (ladder, rate), n in zip(pairs, counts) if n] + [np.empty(0)]))[::-1]
    contacts = np.zeros(len(thresholds) + 1, dtype=np.int64)
    value = np.zeros(len(thresholds) + 1)
    for ladder, rate in pairs:
        scaled = ladder.negated if rate == 1 else ladder.negated * rate  # the same products as the thresholds
        k = np.searchsorted(scaled, -thresholds, side="right")  # customers at or above each threshold
        contacts[1:] += k
        value[1:] += rate * ladder.cumulative[k]
    return contacts, value - contact_cost * contacts


def thin(contacts: np.ndarray, net: np.ndarray, points: int) -> np.ndarray:
    """Indices of at most ``points`` of a curve, evenly spread, keeping its first, last and highest point."""
    if len(contacts) <= points:
        return np.arange(len(contacts))
    keep = np.linspace(0, len(contacts) - 1, points - 1).round().astype(int)
    return np.unique(np.concatenate([keep, [int(np.argmax(net))]]))


def profit_curve_response(table: ScoreTable, request: ProfitCurveRequest, *,
                          view: View | None = None) -> ProfitCurveResponse:
    """What ``POST /profit_curve`` answers: the curve of the segments, the request's plan and the best plan."""
    plan, segments, summary = plan_of(table, request, view)
    uplift = by_uplift(view, request)
    ranked = uplift.ranking if uplift is not None else table.ranking if view is None else view.ranking
    rate = {r.segment: 1.0 if uplift is not None else r.rate for r in summary.save_rates}
    ladders = [ranked.by_segment[s] for s in dict.fromkeys(segments)]
    contacts, net = curve(ladders, contact_cost=request.contact_cost, save_rate=[rate[s] for s in dict.fromkeys(segments)],
                          points=request.points)
    shown = thin(contacts, net, request.points)
    return ProfitCurveResponse(
        as_of=table.as_of, model_version=table.model_version, customers=int(contacts[-1]),
        points=[CurvePoint(contacts=int(c), expected_net_value=float(v)) for c, v in zip(contacts[shown], net[shown])],
        chosen=CurvePoint(contacts=len(plan.positions), expected_net_value=plan.saved_returned),
        best=CurvePoint(contacts=plan.qualifying, expected_net_value=plan.saved_qualifying),
        save_rates=summary.save_rates, left_out_segments=summary.left_out_segments, suppressed=summary.suppressed,
        warnings=summary.warnings)
