"""Numbers in words for the page: money, percentages, the backtest grade, churn drivers, stale scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

#: Top-decile lift bands, best first: (lowest lift, grade, what it means in words).
GRADES = (
    (3.0, "A", "excellent: 3× or more as many churners as random in the riskiest tenth"),
    (2.0, "B", "good: 2× to 3× as many churners as random in the riskiest tenth"),
    (1.5, "C", "fair: 1.5× to 2× as many churners as random in the riskiest tenth"),
    (1.2, "D", "weak: 1.2× to 1.5× as many churners as random in the riskiest tenth"),
    (-math.inf, "E", "little better than random: under 1.2× as many churners in the riskiest tenth"),
)


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


def grade(metrics: dict) -> Grade:
    """The backtest quality as a letter from the top-decile lift, with the sentence that explains it."""
    lift = metrics.get("lift_top_decile")
    if not isinstance(lift, int | float) or not math.isfinite(lift):
        return Grade("?", "no backtest lift was recorded for this model", None,
                     "The backtest of this model recorded no top-decile lift.")
    letter, meaning = next((g, m) for low, g, m in GRADES if lift >= low)
    return Grade(letter, meaning, float(lift), f"In the backtest it caught {lift:.1f}× as many churners as random "
                 "in the riskiest tenth of customers.")


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


def driver_text(feature: str, value: float | None, contribution: float) -> str:
    """One churn driver as a sentence: ``Days since the last purchase: 212 — raises the churn risk``."""
    name, kind = FEATURES.get(feature, (feature.replace("_", " "), "number"))
    if value is None or not math.isfinite(value):
        shown = "unknown"
    else:
        shown = {"money": money, "share": percent, "days": lambda v: f"{v:,.0f}", "count": lambda v: f"{v:,.0f}",
                 "ratio": lambda v: f"{v:.2f}"}.get(kind, lambda v: f"{v:,.2f}")(value)
    effect = "raises the churn risk" if contribution > 0 else "lowers the churn risk"
    return f"{name[0].upper()}{name[1:]}: {shown} — {effect}"


def stale_days(scores_as_of: str, horizon_days: int, today: date) -> int | None:
    """Days since the scores' as-of day when that is more than the model's horizon (stale), else None."""
    try:
        age = (today - date.fromisoformat(scores_as_of)).days
    except ValueError:
        return None
    return age if horizon_days > 0 and age > horizon_days else None
