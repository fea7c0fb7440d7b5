"""What ships is chosen on a window that can judge it: the judging window and the churn ranking.

A training run chooses its churn ranking and purchase forecast on a past window whose outcomes it knows.
A window judges only when it holds purchases, both outcomes, and enough customers of the rarer one for
the churn AUC to be measured to a stated precision (:data:`MIN_OUTCOME`). Where buying clusters in a few
weeks of the year (:func:`calendar_concentration`), the window that looks like the future is the same
season a year earlier, not the quarter just behind the as-of day; otherwise it is that quarter, and when
it cannot judge, the latest earlier window that can.

On the judging window every churn ranking the models can ship (:data:`scoring.bundle.CHURN_METHODS`) is
measured, beside the RFM logistic baseline; the best AUC ships, ties going to the simpler ranking, so the
product never ships a ranking that a simple one beat on the window it was judged on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from contract.dates import iso
from scoring.bundle import CHURN_METHODS, MIN_EXPECTED
from training.backtest import roc_auc

#: Customers of the rarer outcome a window needs to judge a churn ranking: with 50 the AUC's standard error
#: is at most about 0.04 at an AUC of 0.75 (Hanley & McNeil 1982), however many of the other outcome.
MIN_OUTCOME = 50
#: A log is concentrated in time when its busiest :data:`PEAK_WEEKS` weeks of the last year hold at least
#: this share of the year's purchases (evenly spread: 4/52 = 8%; a strong Q4: about 15%; two giving weeks: 90%).
CONCENTRATED_SHARE = 1 / 3
PEAK_WEEKS = 4
YEAR_WEEKS = 52
#: Days between the earlier windows tried when the backtest window cannot judge.
SLIDE_DAYS = 14
#: Days of history a judging fit needs before its origin (as the backtest's: ``training.eligibility``).
MIN_ORIGIN_HISTORY_DAYS = 28


def outcome_counts(labels: pd.DataFrame) -> int:
    """Customers of the rarer outcome (bought nothing / bought) in a labelled window."""
    churned = int(labels["churned"].sum())
    return min(churned, len(labels) - churned)


def can_judge(labels: pd.DataFrame) -> str:
    """'' when the labelled window (``features.make_labels``) can judge a churn ranking, else why not."""
    if labels.empty or labels["purchases"].sum() == 0:
        return "no purchase in the window"
    churned, rare = int(labels["churned"].sum()), outcome_counts(labels)
    if rare == 0:
        return "every customer had the same outcome"
    if rare < MIN_OUTCOME:
        which = "bought" if churned > len(labels) - churned else "bought nothing"
        return (f"only {rare} customer(s) {which} in the window; the churn AUC needs {MIN_OUTCOME} "
                "to be measured within about 0.04")
    return ""


def daily_purchases(transactions: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.Series:
    """Purchases (rows with amount >= 0) of the year up to ``as_of``, counted by day offset before it (0 = the
    as-of day, ..., 363). Counts of partitions of customers add up."""
    day = transactions["timestamp"].dt.normalize()
    offset = (as_of.normalize() - day).dt.days
    kept = offset.loc[(transactions["amount"] >= 0) & offset.between(0, 7 * YEAR_WEEKS - 1)]
    return kept.value_counts().sort_index()


def is_concentrated(daily: pd.Series, *, history_days: int) -> bool:
    """Whether a log with ``history_days`` of history up to the day of ``daily`` (:func:`daily_purchases`) buys in
    a few weeks of the year (:data:`CONCENTRATED_SHARE`); a log younger than a year cannot say."""
    return history_days >= 7 * YEAR_WEEKS and calendar_concentration(daily) >= CONCENTRATED_SHARE


def calendar_concentration(daily: pd.Series) -> float:
    """The share of a year's purchases in its busiest :data:`PEAK_WEEKS` weeks.

    ``daily`` holds purchase counts indexed by day offset before the as-of day (0 = the as-of day, up to
    363): weeks are counted back from the as-of day, so they line up whatever its weekday.
    """
    total = float(daily.sum())
    if total <= 0:
        return 0.0
    weeks = np.bincount((np.asarray(daily.index) // 7).clip(max=YEAR_WEEKS - 1), weights=daily.to_numpy(float),
                        minlength=YEAR_WEEKS)
    return float(np.sort(weeks)[-PEAK_WEEKS:].sum() / total)


@dataclass(frozen=True)
class Window:
    """The judging window ``(origin, origin + horizon_days]``, or none (``origin`` None) when no window
    could judge; ``tried`` says why each window before it could not, ``reason`` why this one was looked at."""

    origin: pd.Timestamp | None
    reason: str
    tried: tuple[str, ...] = field(default_factory=tuple)

    def describe(self, horizon_days: int) -> str:
        if self.origin is None:
            return "no window could judge the churn ranking (" + "; ".join(self.tried) + "): the simplest ships"
        skipped = f"; skipped: {'; '.join(self.tried)}" if self.tried else ""
        return f"judged on {iso(self.origin)} + {horizon_days} days ({self.reason}){skipped}"


def candidate_origins(*, as_of: pd.Timestamp, first_day: pd.Timestamp, horizon_days: int,
                      concentrated: bool) -> list[tuple[pd.Timestamp, str]]:
    """The origins of the windows to try, in order, with why each: the same season a year earlier when the
    log is concentrated in time, then the window just before ``as_of``, then earlier ones :data:`SLIDE_DAYS`
    apart, each keeping :data:`MIN_ORIGIN_HISTORY_DAYS` of history and ending by ``as_of``."""
    latest = as_of - pd.Timedelta(days=horizon_days)
    year = as_of - pd.Timedelta(days=7 * YEAR_WEEKS)
    out = [(year, "the same season a year earlier: buying is concentrated in a few weeks")] if concentrated else []
    out.append((latest, "the horizon before the as-of day"))
    k = 1
    while (origin := latest - pd.Timedelta(days=k * SLIDE_DAYS)) - first_day >= pd.Timedelta(days=MIN_ORIGIN_HISTORY_DAYS):
        out.append((origin, "the latest earlier window that can judge"))
        k += 1
    return [(o, why) for o, why in out
            if o <= latest and o - first_day >= pd.Timedelta(days=MIN_ORIGIN_HISTORY_DAYS)]


def choose_window(origins: list[tuple[pd.Timestamp, str]], labels: Callable[[pd.Timestamp], pd.DataFrame],
                  *, horizon_days: int) -> Window:
    """The first of ``origins`` whose window :func:`can_judge` (``labels(origin)`` labels it)."""
    tried = []
    for origin, reason in origins:
        why = can_judge(labels(origin))
        if not why:
            return Window(origin, reason, tuple(tried))
        if len(tried) < 3:  # the first few say enough
            tried.append(f"{iso(origin)} + {horizon_days} days: {why}")
    return Window(None, "", tuple(tried))


def choose_ranking(y: np.ndarray, scores: dict[str, np.ndarray]) -> tuple[str, dict[str, float]]:
    """The shippable ranking (:data:`CHURN_METHODS`, simplest first) with the best churn AUC on the judging
    window's outcomes ``y`` (1 = churned), and every candidate's AUC (``scores`` may hold others, e.g. the RFM
    logistic, which are measured and not shipped). A more complex ranking ships only when strictly better."""
    aucs = {name: roc_auc(y, score) for name, score in scores.items()}
    shippable = [m for m in CHURN_METHODS if m in scores and np.isfinite(aucs[m])]
    best = max(shippable, key=lambda m: (aucs[m], -CHURN_METHODS.index(m)), default="bgnbd")
    return best, aucs


def rank_calibration(y: np.ndarray, expected: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(slope, intercept) of P(churned) = sigmoid(slope · log(expected purchases) + intercept), fitted on the
    judging window (``scoring.bundle.ranked_probability`` applies it)."""
    x = np.log(np.maximum(np.asarray(expected, dtype=float), MIN_EXPECTED)).reshape(-1, 1)
    platt = LogisticRegression(C=1e6).fit(x, np.asarray(y, dtype=int), sample_weight=weights)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])
