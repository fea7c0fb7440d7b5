"""What ships is chosen on a window that can judge it: the judging window, the churn ranking and the total level.

A training run chooses its churn ranking and purchase forecast on a past window whose outcomes it knows.
A window judges only when it holds purchases, both outcomes, and enough customers of the rarer one for
the churn AUC to be measured to a stated precision (:data:`MIN_OUTCOME`). Where buying clusters in a few
weeks of the year (:func:`calendar_concentration`), the window that looks like the future is the same
season a year earlier, not the quarter just behind the as-of day; otherwise it is that quarter, and when
it cannot judge, the latest earlier window that can.

On the judging window every churn ranking the models can ship (:data:`scoring.bundle.CHURN_METHODS`) is
measured, beside the RFM logistic baseline; the best AUC ships, ties going to the simpler ranking, so the
product never ships a LightGBM ranking that a simple one beat on the window it was judged on. A model fitted on
past snapshots (LightGBM) must beat the best simple ranking by more than one standard error (:data:`ONE_SE`), and
a stand-in for the label (:data:`PROXIES`) must beat BG/NBD's P(no purchase) by as much.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from churnclv.contract.dates import SEASON_YEAR_DAYS, iso
from churnclv.scoring.bundle import CHURN_METHODS, MIN_EXPECTED
from churnclv.training.backtest import auc_difference, pct_error, roc_auc

#: The simple rankings: BG/NBD's own (on the calendar, and on the log's seasonal clock where it has one), no model
#: fitted on past snapshots.
SIMPLE = ("bgnbd", "bgnbd_expected", "bgnbd_clock")

#: Customers of the rarer outcome a window needs to judge a churn ranking: with 50 the AUC's standard error
#: is at most about 0.04 at an AUC of 0.75 (Hanley & McNeil 1982), however many of the other outcome.
MIN_OUTCOME = 50
#: A log is concentrated in time when its busiest :data:`PEAK_WEEKS` weeks of the last year hold at least
#: this share of the year's purchases (evenly spread: 4/52 = 8%; a strong Q4: about 15%; two giving weeks: 90%).
CONCENTRATED_SHARE = 1 / 3
PEAK_WEEKS = 4
YEAR_WEEKS = 52
#: A ranking is told apart from another on a window only when their AUCs differ by more than this many standard
#: errors of the difference (DeLong; 1.96: 95%); closer, the run says the window could not tell them apart.
SEPARATES = 1.96
#: A model fitted on past snapshots (LightGBM) ships only when it ranks the judging window better than the best simple
#: ranking by more than this many standard errors of the difference: the one-standard-error rule (Breiman et al.
#: 1984; Hastie, Tibshirani & Friedman, ESL 7.10). Over the zoo's four draws it keeps LightGBM at 40 of the 46 cuts
#: whose window it won (bursts, subscription) and sends back 6 wins within the noise, 4 of which lost on the future.
ONE_SE = 1.0
#: The simple ranking that ships unless another beats it by more than :data:`ONE_SE`: BG/NBD's probability of no
#: purchase over the horizon, the model's own probability of the label.
LABEL_RANKING = "bgnbd"
#: Simple rankings that stand in for the label (fewest expected purchases: it wins where the model's rates are off,
#: and loses where a busy season lies ahead): they ship over :data:`LABEL_RANKING` only on that evidence too. Over the
#: zoo's four draws this sends 16 window wins back: 6 gained on the future (by up to 0.013), 10 lost (at most 0.0017).
PROXIES = ("bgnbd_expected",)
#: Purchases a judging window needs to choose the total level: its own count's Poisson noise is then at most 10%.
MIN_LEVEL_PURCHASES = 100
#: The total levels a run can ship: BG/NBD's times the season's factor, or the LightGBM Poisson model's own.
LEVELS = ("bgnbd", "lightgbm")
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
    kept = offset.loc[(transactions["amount"] >= 0) & offset.between(0, SEASON_YEAR_DAYS - 1)]
    return kept.value_counts().sort_index()


def is_concentrated(daily: pd.Series, *, history_days: int) -> bool:
    """Whether a log with ``history_days`` of history up to the day of ``daily`` (:func:`daily_purchases`) buys in
    a few weeks of the year (:data:`CONCENTRATED_SHARE`); a log younger than a year cannot say."""
    return history_days >= SEASON_YEAR_DAYS and calendar_concentration(daily) >= CONCENTRATED_SHARE


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
    """A judging window ``(origin, origin + horizon_days]`` (``origin`` None: none could judge); ``reason`` says
    why it was looked at, ``tried`` why each window before it could not judge."""

    origin: pd.Timestamp | None
    reason: str = ""
    tried: tuple[str, ...] = field(default_factory=tuple)

    def describe(self, horizon_days: int) -> str:
        if self.origin is None:
            return "no window could judge (" + "; ".join(self.tried) + ")"
        skipped = f"; skipped {'; '.join(self.tried)}" if self.tried else ""
        return f"{iso(self.origin)} + {horizon_days} days ({self.reason}{skipped})"


@dataclass(frozen=True)
class Judging:
    """Where a run chooses: every candidate on ``window`` (the backtest); when ``simple`` is set, the simple
    BG/NBD rankings on that window instead (the same season a year earlier, where the history was too short
    for the other candidates), and the others must beat the simple one chosen there on ``window``."""

    window: Window
    simple: Window | None = None

    def describe(self, horizon_days: int) -> str:
        if self.window.origin is None:
            return f"{self.window.describe(horizon_days)}: nothing is chosen on metrics, BG/NBD ships"
        text = f"judged on {self.window.describe(horizon_days)}"
        return text + (f"; the simple rankings on {self.simple.describe(horizon_days)}" if self.simple else "")


def season_origin(*, as_of: pd.Timestamp, first_day: pd.Timestamp) -> pd.Timestamp | None:
    """The origin of the same season a year (52 weeks) earlier, if the history before it is long enough."""
    origin = as_of - pd.Timedelta(days=SEASON_YEAR_DAYS)
    return origin if origin - first_day >= pd.Timedelta(days=MIN_ORIGIN_HISTORY_DAYS) else None


def recent_origins(*, as_of: pd.Timestamp, first_day: pd.Timestamp, horizon_days: int) -> list[pd.Timestamp]:
    """The window just before ``as_of``, then earlier ones :data:`SLIDE_DAYS` apart, each keeping
    :data:`MIN_ORIGIN_HISTORY_DAYS` of history."""
    latest, least = as_of - pd.Timedelta(days=horizon_days), first_day + pd.Timedelta(days=MIN_ORIGIN_HISTORY_DAYS)
    return [o for k in range(SEASON_YEAR_DAYS // SLIDE_DAYS) if (o := latest - pd.Timedelta(days=k * SLIDE_DAYS)) >= least]


def choose_window(origins: list[tuple[pd.Timestamp, str]], labels: Callable[[pd.Timestamp], pd.DataFrame],
                  *, horizon_days: int) -> Window:
    """The first of ``origins`` (with why each is looked at) whose window :func:`can_judge`; ``labels(origin)``
    labels it."""
    tried = []
    for origin, reason in origins:
        why = can_judge(labels(origin))
        if not why:
            return Window(origin, reason, tuple(tried))
        if len(tried) < 2:  # the first few say enough
            tried.append(f"{iso(origin)}: {why}")
    return Window(None, "", tuple(tried))


def plan_judging(*, as_of: pd.Timestamp, first_day: pd.Timestamp, horizon_days: int,
                 labels: Callable[[pd.Timestamp], pd.DataFrame], full_at: Callable[[pd.Timestamp], bool]) -> Judging:
    """Where to choose (:class:`Judging`). The window most like the one ahead is the same season a year earlier:
    which ranking wins moves with the season (on a log with a strong fourth quarter BG/NBD's P(no purchase)
    ranks best in the quarters around the peak and its expected purchases in the others), so the quarter just
    before the as-of day is only the fallback, then earlier windows until one can judge. ``full_at(origin)``:
    whether a fit there has every candidate a fit at ``as_of`` has (the stacked snapshots need history)."""
    recent = [(o, "the horizon before the as-of day" if k == 0 else "the latest earlier window that can judge")
              for k, o in enumerate(recent_origins(as_of=as_of, first_day=first_day, horizon_days=horizon_days))]
    year = season_origin(as_of=as_of, first_day=first_day)
    season = choose_window([(year, "the same season a year earlier")], labels, horizon_days=horizon_days) \
        if year is not None else Window(None)
    if season.origin is not None and full_at(season.origin):
        return Judging(season)
    window = choose_window(recent, labels, horizon_days=horizon_days)
    if season.origin is None:
        return Judging(window)
    # the season judges the simple rankings; the others too where a recent window can judge them
    return Judging(window, simple=season) if window.origin is not None else Judging(season)


def choose_level(*, actual: float, bgnbd: float, lightgbm: float | None, season_seen: bool) -> tuple[str, str]:
    """The total level that ships (:data:`LEVELS`) and a line saying why, from the purchases the judging window
    held (``actual``) and the totals the judging fit forecast for it: BG/NBD's times the season's factor and the
    LightGBM Poisson model's own (None: no such model).

    BG/NBD extrapolates its fitted process; the Poisson model learns the level of the recent label windows from
    the stacked snapshots, which holds where buying comes in bursts or fades with age (beyond BG/NBD's
    assumptions) and misses a season it never sees. The closer total on the window ships, where the window can
    judge: it holds :data:`MIN_LEVEL_PURCHASES`, and the judging fit measured its own season (a fit without that
    factor is not the forecaster that ships, which has it). Otherwise BG/NBD's."""
    if lightgbm is None or abs(lightgbm - actual) >= abs(bgnbd - actual):
        return "bgnbd", ""
    errors = f"{pct_error(lightgbm, actual):+.1f}% against {pct_error(bgnbd, actual):+.1f}% for BG/NBD with the season"
    if actual < MIN_LEVEL_PURCHASES or not season_seen:
        why = (f"the window held {actual:,.0f} purchases (needs {MIN_LEVEL_PURCHASES})" if actual < MIN_LEVEL_PURCHASES
               else "its fit had no season's factor to be judged with")
        return "bgnbd", f"total level: BG/NBD's with the season; the LightGBM Poisson total was closer on the " \
                        f"judging window ({errors}), but {why}"
    return "lightgbm", f"total level: the LightGBM Poisson model's own, closer on the judging window ({errors})"


def choose_ranking(y: np.ndarray, scores: dict[str, np.ndarray], *,
                   simple: tuple[np.ndarray, dict[str, np.ndarray]] | None = None,
                   ship: tuple[str, ...] = CHURN_METHODS) -> tuple[str, dict[str, float]]:
    """The shippable ranking (:data:`CHURN_METHODS`, simplest first) with the best churn AUC on the judging
    window's outcomes ``y`` (1 = churned), and every candidate's AUC there (``scores`` may hold others, e.g. the
    RFM logistic, which are measured and not shipped). A model fitted on past snapshots ships only when it ranks
    the window better than the best simple ranking by more than :data:`ONE_SE` standard error of the difference:
    a win within the window's noise is no evidence, and the simpler ships. Likewise a proxy of the label
    (:data:`PROXIES`) ships over BG/NBD's P(no purchase) only when it beats it by more than that.

    ``simple``: the outcomes and scores of a second window (:attr:`Judging.simple`) where the simple rankings
    (:data:`SIMPLE`) it holds are chosen instead; the others then must beat that choice on the judging window.
    ``ship``: the rankings that may ship (measured or not, the others are only reported).
    """
    aucs = {name: roc_auc(y, score) for name, score in scores.items()}
    shippable = [m for m in CHURN_METHODS if m in scores and m in ship and np.isfinite(aucs[m])]
    if simple is not None:  # the simple rankings' AUCs there are reported as "<method>@season"
        y_simple, simple_scores = simple
        simple_aucs = {m: roc_auc(y_simple, simple_scores[m]) for m in SIMPLE if m in simple_scores}
        there = [m for m in SIMPLE if np.isfinite(simple_aucs.get(m, np.nan))]
        best_simple = _best(there, simple_aucs)
        if best_simple in shippable:  # a simple ranking the second window lacks (no clock there) competes here
            shippable = [best_simple] + [m for m in shippable if m not in there]
        aucs |= {f"{m}@season": auc for m, auc in simple_aucs.items()}
    best, simplest = _best(shippable, aucs) or "bgnbd", _best([m for m in shippable if m in SIMPLE], aucs)
    if best not in SIMPLE and simplest and not separates(y, scores[best], scores[simplest], by=ONE_SE):
        best = simplest
    if best in PROXIES and LABEL_RANKING in ship:  # judged where it was chosen: the season's window, or this one
        y_best, at = simple if simple is not None and best in there else (y, scores)
        if LABEL_RANKING in at and not separates(y_best, at[best], at[LABEL_RANKING], by=ONE_SE):
            best = LABEL_RANKING
    return best, aucs


def separates(y: np.ndarray, better: np.ndarray, other: np.ndarray, *, by: float) -> bool:
    """Whether ``better`` ranks the outcomes ``y`` better than ``other`` by more than ``by`` standard errors of
    the difference (:func:`training.backtest.auc_difference`)."""
    diff, se = auc_difference(y, better, other)
    return bool(np.isfinite(diff) and diff > by * se)


def clock_verdict(y: np.ndarray, scores: dict[str, np.ndarray], *, against: str, window: str) -> tuple[bool, str]:
    """Whether BG/NBD on the seasonal clock (``scores["bgnbd_clock"]``) ranks the outcomes ``y`` of ``window``
    strictly better than the simple ranking ``against`` chosen on the judging window, and a line saying so."""
    clock, simple = roc_auc(y, scores["bgnbd_clock"]), roc_auc(y, scores[against])
    wins = bool(clock > simple)
    return wins, (f"seasonal clock judged on {window} (the judging fit had no clock): BG/NBD on the clock ranks it "
                  f"{'better' if wins else 'no better'} than {against} (AUC {clock:.4f} against {simple:.4f})"
                  f"{', and ships' if wins else ''}")


def _best(methods: list[str], aucs: dict[str, float]) -> str:
    """The method of highest AUC, the earlier (simpler) one of ``methods`` on a tie; '' for none."""
    return max(methods, key=lambda m: (aucs[m], -methods.index(m)), default="")


def rank_calibration(y: np.ndarray, expected: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(slope, intercept) of P(churned) = sigmoid(slope · log(expected purchases) + intercept), fitted on the
    judging window (``scoring.bundle.ranked_probability`` applies it)."""
    x = np.log(np.maximum(np.asarray(expected, dtype=float), MIN_EXPECTED)).reshape(-1, 1)
    platt = LogisticRegression(C=1e6).fit(x, np.asarray(y, dtype=int), sample_weight=weights)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def told_apart(y: np.ndarray, scores: dict[str, np.ndarray], *, chosen: str, rivals: list[str]) -> str:
    """'' when ``chosen`` ranked the window's outcomes ``y`` better than each of ``rivals`` by more than
    :data:`SEPARATES` standard errors of the difference (:func:`training.backtest.auc_difference`), else a line
    naming the closest rival, the margin and the window's precision: the choice between them is a coin flip."""
    close = []
    for rival in (r for r in rivals if r in scores and r != chosen):
        diff, se = auc_difference(y, scores[chosen], scores[rival])
        if np.isfinite(diff) and abs(diff) <= SEPARATES * se:
            close.append((abs(diff), rival, diff, se))
    if not close:
        return ""
    _, rival, diff, se = min(close)
    why = ("the simpler" if chosen in SIMPLE and rival not in SIMPLE else
           f"{chosen}, the model's own probability of churn," if chosen == LABEL_RANKING and rival in PROXIES else "")
    sent_back = (f"; {rival} ranked it better by less than {ONE_SE:g} standard error ({se:.4f}), so {why} "
                 "ships") if diff < 0 and why else ""
    return (f"a coin flip: {chosen} and {rival} rank the judging window alike (AUC {diff:+.4f}, within its "
            f"precision of ±{SEPARATES * se:.4f} at 95%): the window cannot tell them apart, and the horizon ahead "
            f"may favour either{sent_back}")
