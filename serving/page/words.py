"""Numbers in words for the page: money, percentages, the backtest grade, churn drivers, stale scores."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

#: The grade's bands, best first: (lowest churn AUC, grade, what it means in words). The AUC is the chance that the
#: model ranks a customer who churned above one who stayed; it does not move with the share of customers who churn,
#: so one rule grades every log (the top-decile lift does move: when 88% churn, no tenth can hold more than
#: 1/0.88 = 1.14 times the average, however good the ranking).
GRADES = (
    (0.85, "A", "excellent: ranks the churner above the stayer in 85% of pairs or more"),
    (0.75, "B", "good: ranks the churner above the stayer in 75% to 85% of pairs"),
    (0.65, "C", "fair: ranks the churner above the stayer in 65% to 75% of pairs"),
    (0.55, "D", "weak: ranks the churner above the stayer in 55% to 65% of pairs"),
    (-math.inf, "E", "little better than random: under 55% of pairs (50% is guessing)"),
)
#: The best top-decile lift is 1 / (share who churn), and never more than this (a tenth of customers can hold
#: at most all the churners: 10× when a tenth or fewer churn).
MAX_LIFT = 10.0

def money(value: float | None, digits: int = 2) -> str:
    """An amount in the log's currency with thousands separators (``1,234.50``); a dash when unknown."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{abs(value):,.{digits}f}"
    return f"−{text}" if value < 0 and text.strip("0.,") else text


def percent(value: float | None, digits: int = 0) -> str:
    """A share (0.123) as a percentage (``12%``); a dash when unknown."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.{digits}f}%"


def count(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.0f}"


def label(name: str) -> str:
    """A policy name in words: ``high_value_at_risk`` -> ``High value at risk``."""
    return name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Grade:
    letter: str
    meaning: str
    lift: float | None
    sentence: str
    auc: float | None = None
    best_lift: float | None = None  # the best lift possible at the log's churn rate


def best_lift(churn_rate: float | None) -> float | None:
    """The highest top-decile lift any model can reach when ``churn_rate`` of customers churn: min(1/rate, 10)."""
    if churn_rate is None or not math.isfinite(churn_rate) or churn_rate <= 0:
        return None
    return min(1.0 / churn_rate, MAX_LIFT)


def band(auc: float) -> tuple[str, str]:
    """The grade letter and its meaning for a churn AUC (:data:`GRADES`)."""
    return next((g, m) for low, g, m in GRADES if auc >= low)


def _finite(value) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def grade(metrics: dict, *, churn_rate: float | None = None) -> Grade:
    """The backtest quality as a letter from the churn AUC (:data:`GRADES`), with a sentence that puts the
    top-decile lift beside the best lift possible at ``churn_rate`` (the share expected to churn on this log)."""
    auc, lift = _finite(metrics.get("roc_auc")), _finite(metrics.get("lift_top_decile"))
    best = best_lift(churn_rate)
    if auc is None:
        return Grade("?", "no backtest churn AUC was recorded for this model", lift,
                     "The backtest of this model recorded no churn ranking figure.", None, best)
    letter, meaning = band(auc)
    sentence = ""
    if lift is not None:
        sentence = f"In the backtest it caught {lift:.1f}× as many churners as random in the riskiest tenth of customers"
        if best is not None:
            sentence += (f"; with {percent(churn_rate)} of customers expected to churn, the best possible is {best:.2f}×, "
                         f"so it reached {percent(min((lift - 1) / (best - 1), 1.0)) if best > 1 else '–'} of the "
                         "possible gain over random")
        sentence += "."
    return Grade(letter, meaning, lift, sentence or "The backtest recorded no top-decile lift.", auc, best)


#: Segment names that say the risk is low, and those that say it is high.
CALM, RISKY = ("steady", "loyal"), ("at_risk", "high_value_at_risk")


def segment_name(segment: str, churn: float, overall: float) -> str:
    """A segment's name on the page, which never contradicts its own figures.

    The segments are cut relative to the log (:mod:`scoring.segments`: the riskiest 30%, the safest 30%, ...).
    A name that says the risk is low (steady, loyal) is shown as it is when the segment's mean churn risk is
    under 50%; above that it is "Less at risk than most" when it is under the log's average, else "Middle of the
    pack". A name that says the risk is high (at risk) is shown when the segment's mean churn risk is 50% or more,
    or above the log's average; otherwise it is "Middle of the pack".
    """
    if segment in CALM and churn >= 0.5:
        return "Less at risk than most" if churn < overall else "Middle of the pack"
    if segment in RISKY and churn < 0.5 and churn < overall:
        return "Middle of the pack"
    return label(segment)


def churn_rate(segments: Iterable) -> float | None:
    """The share of customers expected to churn: the segments' mean churn risks weighted by their customers
    (rows with ``customers`` and ``churn_probability``, as ``GET /segments`` gives them)."""
    rows = [(s.customers, s.churn_probability) for s in segments if math.isfinite(s.churn_probability)]
    total = sum(n for n, _ in rows)
    return sum(n * p for n, p in rows) / total if total else None


def segment_names(segments: Iterable) -> dict[str, str]:
    """Every segment's name on the page, one per segment key, for every view (overview, plan, customer, CSV).

    Each is :func:`segment_name` of the segment's mean churn risk against the log's (:func:`churn_rate`);
    when two segments would read the same (two "Middle of the pack"), each gets its next action beside it
    ("Middle of the pack (newsletter)"), so that a checkbox or a row never names two segments at once.
    """
    rows = list(segments)
    overall = churn_rate(rows)
    names = {s.segment: label(s.segment) if overall is None else segment_name(s.segment, s.churn_probability, overall)
             for s in rows}
    taken = Counter(names.values())
    return {s.segment: f"{names[s.segment]} ({label(s.recommended_action).lower()})" if taken[names[s.segment]] > 1
            else names[s.segment] for s in rows}


#: Churn drivers (features of the model) in words, and how their values read.
FEATURES = {
    "recency": ("days from the first to the last purchase", "days"),
    "frequency": ("repeat purchases", "count"),
    "T": ("days since the first purchase", "days"),
    "monetary_value": ("average repeat purchase", "money"),
    "n_transactions": ("purchases", "count"),
    "total_spend": ("total spend", "money"),
    "days_since_last": ("days since the last purchase", "days"),
    "gap_mean": ("usual days between purchases", "days"),
    "gap_std": ("spread of the days between purchases", "days"),
    "gap_last": ("days between the last two purchases", "days"),
    "overdue_ratio": ("days since the last purchase ÷ the usual gap", "ratio"),
    "spend_trend": ("spend trend, last 90 days against the 90 before (−1 to +1)", "ratio"),
    "avg_basket": ("average basket", "money"),
    "return_rate": ("share of spend returned", "share"),
    "n_categories": ("categories bought", "count"),
    "n_channels": ("channels bought through", "count"),
    "tenure_months": ("months since the first purchase", "count"),
    "bgnbd_p_alive": ("chance the customer is still active (purchase model)", "share"),
    "bgnbd_p_no_purchase": ("chance of no purchase in the horizon (purchase model)", "share"),
    "bgnbd_expected_purchases": ("purchases expected in the horizon (purchase model)", "number"),
    "bgnbd_expected_spend": ("spend expected in the horizon (purchase model)", "money"),
    "bgnbd_expected_spend_per_purchase": ("spend expected per purchase (purchase model)", "money"),
    "bgnbd_clv": ("lifetime value (purchase model)", "money"),
}
FEATURES |= {f"purchases_{d}d": (f"purchase days in the last {d} days", "count") for d in (30, 90, 180, 365)}
FEATURES |= {f"spend_{d}d": (f"spend in the last {d} days", "money") for d in (30, 90, 180, 365)}
#: The touchpoint features (``features.events``); a "since" feature that is missing never happened.
FEATURES |= {
    "nps_last": ("last NPS answer", "nps"),
    "nps_group": ("NPS group", "nps_group"),
    "nps_age_days": ("days since the last NPS answer", "since"),
    "csat_last": ("last CSAT answer (1 to 5)", "count"),
    "csat_age_days": ("days since the last CSAT answer", "since"),
    "survey_worst_90d": ("worst survey answer of the last 90 days (0 worst, 100% best)", "share"),
    "days_since_support_contact": ("days since the last support contact", "since"),
    "days_since_complaint": ("days since the last complaint", "since"),
    "email_open_trend": ("e-mail opening, last 30 days against the 60 before", "share_change"),
    "days_since_email_open": ("days since an e-mail was last opened", "since"),
    "days_since_visit": ("days since the last visit", "since"),
    "unsubscribed": ("unsubscribed from e-mail", "yes_no"),
    "other_events_90d": ("other events in the last 90 days", "count"),
}
FEATURES |= {f"{kind}_{d}d": (f"{words} in the last {d} days", "count") for d in (30, 90)
             for kind, words in (("support_contacts", "support contacts"), ("complaints", "complaints"))}
FEATURES |= {"visits_30d": ("visits in the last 30 days", "count")}
FEATURES |= {f"email_{what}_rate_{d}d": (f"share of e-mails {what}ed in the last {d} days", "share")
             for what in ("open", "click") for d in (30, 90)}
#: NPS groups (``features.events.nps_group``): -1, 0, 1.
NPS_GROUPS = {-1: "detractor", 0: "passive", 1: "promoter"}


def nps_words(value: float) -> str:
    """An NPS answer and its group: ``3 (detractor)``."""
    group = -1 if value <= 6 else (1 if value >= 9 else 0)
    return f"{value:.0f} ({NPS_GROUPS[group]})"


def driver_text(feature: str, value: float | None, contribution: float) -> str:
    """One churn driver as a sentence: ``Days since the last purchase: 212 — raises the churn risk``."""
    name, kind = FEATURES.get(feature, (feature.replace("_", " "), "number"))
    if value is None or not math.isfinite(value):
        shown = "never" if kind == "since" else ("no answer" if kind.startswith("nps") else "unknown")
    else:
        shown = {"money": money, "share": percent, "days": lambda v: f"{v:,.0f}", "count": lambda v: f"{v:,.0f}",
                 "since": lambda v: f"{v:,.0f}", "ratio": lambda v: f"{v:.2f}", "nps": nps_words,
                 "nps_group": lambda v: NPS_GROUPS.get(round(v), "unknown"), "yes_no": lambda v: "yes" if v else "no",
                 "share_change": lambda v: f"{v * 100:+.0f} points"}.get(kind, lambda v: f"{v:,.2f}")(value)
    effect = "raises the churn risk" if contribution > 0 else "lowers the churn risk"
    return f"{name[0].upper()}{name[1:]}: {shown} — {effect}"


def stale_days(scores_as_of: str, horizon_days: int, today: date) -> int | None:
    """Days since the scores' as-of day when that is more than the model's horizon (stale), else None."""
    try:
        age = (today - date.fromisoformat(scores_as_of)).days
    except ValueError:
        return None
    return age if horizon_days > 0 and age > horizon_days else None
