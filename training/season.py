"""The season ahead: how far the BG/NBD forecast missed in the same window of earlier years.

BG/NBD is stationary: it forecasts a year's average rate whatever the season. When the history holds
the same calendar window one or more years before the as-of date, a BG/NBD model fitted at each of
those earlier dates (on the data up to it only) is compared with what happened in its next
``horizon_days``. The ratio actual / forecast of the latest such year is the factor applied to the
forecast now. The ratio drifts as the customer base ages (a donor base that gave 3.4x the stationary
forecast at its first appeal gives 2.2x a year later), so when the model of the year before had seen
every season but the one ahead (history of at least a year minus the horizon), the factor follows half
of the latest year-on-year change in the ratio (a damped trend, in log scale). A ratio measured on a
younger base is not used for the trend: it mixes the base's youth into the season (a donor base whose
first December gave 9.8x, then 2.3x, gave 2.1x the next year, and the trend would have said 1.1x).
Years are 52 weeks (364 days), so weekdays line up.

A log whose months were tested for a season and show none (``training.clock``: no clock, the month effects
within their noise) and whose buying is not concentrated in a few weeks has nothing to learn from a year
earlier that the window just before the as-of day does not hold: there the ratio is BG/NBD's misfit of how the
log buys (bursts, an ageing base), and it drifts with the base's age. Such a log takes the ratio of the horizon
before the as-of day, measured on the base closest to today's (:func:`season_cutoffs`). On the zoo's seven
steady shapes (four draws, 99 cuts) its error against the ratio that held next is 5.9% against 9.5% for the
year-earlier window's (mean absolute log), and 6 cuts miss by over 15% against 25.

A log with a seasonal clock (``training.clock``) whose buying is not concentrated in a few weeks measures the
ratio on the clock instead (:func:`season_on_clock`): BG/NBD fitted on the clock's operational days a year
earlier against what happened in the window, times how far the clock moves today's forecast from the calendar
fit's. A calendar fit just after a peak reads the peak as the customers' own rate, and by how much depends on how
much of its history the peak is: a ratio measured on a base one year old, applied to a base two years old,
carries the difference (the quiet quarter after a strong fourth quarter was forecast 7% to 21% short). On the clock
the peak is a busy stretch of time, not a faster customer. On the zoo's seasonal_q4 and retail_q4 shapes (four
draws, 48 and 68 cuts) the factor's error against the ratio that held next falls from 7.9% to 5.7% and from 3.6%
to 2.4% (mean absolute log). Where the year-earlier base had not lived a year, or buying is concentrated in a few
weeks (a month's rate averages a one-week event away), the calendar ratio stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnclv.contract.dates import SEASON_YEAR_DAYS, iso
from churnclv.features import Encoded, build_features, encode, make_labels
from churnclv.scoring.clock import ClockedBGNBD
from churnclv.training.clock import fit_on_clock
from churnclv.training.mle import CLVFitError

MAX_YEARS = 2  # the latest year and the one before it (for the trend)
#: The factor is kept within these bounds. A window a year earlier measures the season when either side of
#: its ratio holds :data:`MIN_WINDOW_PURCHASES`: a forecast of 300 purchases against 7 that happened (a donor
#: base between its giving weeks) says "quiet" as clearly as 300 against 900 says "peak".
FACTOR_RANGE = (0.02, 5.0)
MIN_WINDOW_PURCHASES = 30
#: The share of the latest year-on-year change of the ratio carried into the year ahead.
TREND_DAMPING = 0.5


#: Where a log without a season (:func:`season_cutoffs`) measures its factor, as the notes say it.
FLAT_WINDOW = "the horizon before the as-of day (the log's months show no season)"


@dataclass(frozen=True)
class Season:
    """The seasonal factor for the window after ``as_of`` and the earlier windows it rests on."""

    factor: float = 1.0
    windows: list[dict] = field(default_factory=list)
    note: str = ""

    def fields(self) -> dict:
        """The season's fields of ``scoring.bundle.Models``: the factor, whether it was measured, and on how many
        purchases (the latest window's)."""
        return {"season_factor": self.factor, "season_seen": bool(self.windows),
                "season_measured_on": int(self.windows[0]["actual"]) if self.windows else 0}


def same_season_cutoffs(*, as_of: pd.Timestamp, first_day: pd.Timestamp, min_history_days: int) -> list[pd.Timestamp]:
    """``as_of`` minus 1, 2, ... 52-week years, as long as each keeps ``min_history_days`` of history."""
    years = [as_of - pd.Timedelta(days=SEASON_YEAR_DAYS * k) for k in range(1, MAX_YEARS + 1)]
    return [c for c in years if (c - first_day).days >= min_history_days]


def season_cutoffs(*, as_of: pd.Timestamp, first_day: pd.Timestamp, horizon_days: int, min_history_days: int,
                   flat: bool) -> list[pd.Timestamp] | None:
    """The cutoffs whose windows measure the factor, latest first: the same window of earlier years, or with
    ``flat`` (a log without a season) the horizon before ``as_of``. None where a ``horizon_days`` horizon covers
    every season (its window a year earlier would reach past ``as_of``, where nothing is read)."""
    if horizon_days > SEASON_YEAR_DAYS:
        return None
    if flat:
        return [as_of - pd.Timedelta(days=horizon_days)]
    return same_season_cutoffs(as_of=as_of, first_day=first_day, min_history_days=min_history_days)


#: The note where a horizon holds every season (:func:`season_cutoffs` is None).
EVERY_SEASON = "season ahead: a {}-day horizon covers every season; the forecast is not adjusted"


def season_ahead(transactions: pd.DataFrame | Encoded, *, as_of: pd.Timestamp, horizon_days: int, min_history_days: int,
                 clv_model: Callable, flat: bool = False) -> Season:
    """The :class:`Season` of the window ``(as_of, as_of + horizon_days]`` from rows on or before ``as_of``
    (``flat``: the log shows no season, :func:`season_cutoffs`).

    ``clv_model()`` makes an unfitted CLV model. Each earlier window's BG/NBD model is fitted on the rows
    up to its own cutoff; its window ends before ``as_of``, so nothing after ``as_of`` is read.
    """
    enc = encode(transactions)  # once for every earlier window
    first_day = enc.frame["timestamp"].min().normalize()
    cutoffs = season_cutoffs(as_of=as_of, first_day=first_day, horizon_days=horizon_days,
                             min_history_days=min_history_days, flat=flat)
    if cutoffs is None:
        return Season(note=EVERY_SEASON.format(horizon_days))
    return season_of([window_forecast(enc, cutoff=c, horizon_days=horizon_days, clv_model=clv_model) for c in cutoffs],
                     horizon_days=horizon_days, first_day=first_day, flat=flat)


def window_forecast(transactions: pd.DataFrame | Encoded, *, cutoff: pd.Timestamp, horizon_days: int,
                    clv_model: Callable) -> dict | None:
    """What happened in ``(cutoff, cutoff + horizon_days]`` and what a BG/NBD model fitted at ``cutoff`` forecast:
    ``{"cutoff", "actual", "forecast"}`` (purchases), or None when no model could be fitted there."""
    features = build_features(transactions, as_of=cutoff)
    try:
        clv = clv_model().fit(features)
    except CLVFitError:
        return None
    forecast, actual = window_totals(transactions, features, clv=clv, cutoff=cutoff, horizon_days=horizon_days)
    return {"cutoff": iso(cutoff), "actual": actual, "forecast": forecast}


def window_totals(transactions: pd.DataFrame | Encoded, features: pd.DataFrame, *, clv, cutoff: pd.Timestamp,
                  horizon_days: int) -> tuple[float, int]:
    """(purchases ``clv`` forecasts, purchases that happened) of the customers of ``features`` (the
    customer features at ``cutoff``) in ``(cutoff, cutoff + horizon_days]``. Summed over customer
    partitions, they give the whole log's (``training.partitioned``)."""
    forecast = float(clv.predict(features, horizon_days=horizon_days)["expected_purchases"].sum())
    return forecast, int(make_labels(transactions, as_of=cutoff, horizon_days=horizon_days)["purchases"].sum())


def season_of(measured: list[dict | None], *, horizon_days: int, first_day: pd.Timestamp, flat: bool = False) -> Season:
    """The :class:`Season` from the :func:`window_forecast` of each earlier year (latest first) of a log
    that starts on ``first_day`` (``flat``: of the horizon before the as-of day, :func:`season_cutoffs`)."""
    where = FLAT_WINDOW if flat else "the same window a year earlier"
    windows = [m | {"ratio": float(max(m["actual"], 0.5) / m["forecast"])} for m in measured  # 0: under one
               if m is not None and max(m["actual"], m["forecast"]) >= MIN_WINDOW_PURCHASES and m["forecast"] > 0]
    if not windows:  # no year earlier (the eligibility report says so) or too few purchases there (said here)
        few = next((m for m in measured if m is not None), None)
        return Season(note="" if few is None else
                      f"season ahead: not adjusted, {where} ({few['cutoff']} + {horizon_days} "
                      f"days) held {few['actual']:,} purchases against a forecast of {few['forecast']:,.0f}, too few "
                      f"to measure it (needs {MIN_WINDOW_PURCHASES})")
    latest, *older = windows
    before = pd.Timestamp(latest["cutoff"]) - pd.Timedelta(days=SEASON_YEAR_DAYS)
    mature = [w for w in older[:1]  # the year before, if its model had seen every season but the one ahead
              if pd.Timestamp(w["cutoff"]) == before and (before - first_day).days >= SEASON_YEAR_DAYS - horizon_days]
    factor = float(np.clip(damped_trend([w["ratio"] for w in (latest, *mature)]), *FACTOR_RANGE))
    trend = f", 2 years' trend (ratio {mature[0]['ratio']:.2f} a year before)" if mature else ""
    precision = (f"; measured on {latest['actual']} purchases, ±{1 / np.sqrt(max(latest['actual'], 1)):.0%}"
                 if latest["actual"] < MIN_WINDOW_PURCHASES else "")
    age = (pd.Timestamp(latest["cutoff"]) - first_day).days
    if age < SEASON_YEAR_DAYS:  # a base that had not lived a year: its ratio mixes its youth with the season
        precision += (f"; measured on a base {age} days old, whose ratio "
                      f"{'still carries its youth' if flat else 'mixes its youth with the season'}: uncertain")
    return Season(factor=factor, windows=windows,
                  note=f"season ahead: forecast x {factor:.2f}, from {where}{trend} "
                       f"({latest['cutoff']} + {horizon_days} days: {latest['actual']:,} purchases, "
                       f"BG/NBD forecast {latest['forecast']:,.0f}, ratio {latest['ratio']:.2f}{precision})")


def damped_trend(ratios: list[float]) -> float:
    """The ratio a year ahead from ``ratios`` (latest year first): the latest, moved by
    :data:`TREND_DAMPING` of its change from the year before (in log scale)."""
    if len(ratios) < 2:
        return ratios[0]
    return ratios[0] * (ratios[0] / ratios[1]) ** TREND_DAMPING


def season_on_clock(season: Season, clocked: ClockedBGNBD, *, now: pd.DataFrame, as_of: pd.Timestamp,
                    horizon_days: int, features: Callable[[pd.Timestamp], pd.DataFrame], first_day: pd.Timestamp,
                    clv_model: Callable) -> Season:
    """``season`` measured on the seasonal clock of ``clocked`` (the BG/NBD model fitted on it at ``as_of``):
    BG/NBD fitted on the same clock at the cutoff of the window a year earlier (on ``features(cutoff)``, the
    customer features there) against what happened in that window, times the clocked forecast over the calendar
    one now (``now``: the as-of table, with ``bgnbd_expected_purchases``). The factor stays a multiple of the
    calendar forecast.

    ``season`` is returned as it is where it rests on no year-earlier window, where that window's base had not
    lived a year (its ratio mixes its youth with the season), or where BG/NBD cannot be fitted on the clock there
    or forecasts no finite, positive total.
    """
    if not season.windows:
        return season
    latest = season.windows[0]
    cutoff = pd.Timestamp(latest["cutoff"])
    if (cutoff - first_day).days < SEASON_YEAR_DAYS or cutoff + pd.Timedelta(days=SEASON_YEAR_DAYS) != as_of:
        return season
    then = features(cutoff)
    try:
        earlier = fit_on_clock(clocked.clock, then, as_of=cutoff, clv_model=clv_model)
    except CLVFitError:
        return season
    forecast = float(earlier.expected_purchases(then, as_of=cutoff, horizon_days=horizon_days).sum())
    clock_now = float(clocked.expected_purchases(now, as_of=as_of, horizon_days=horizon_days).sum())
    calendar = float(np.sum(now["bgnbd_expected_purchases"]))
    if not all(np.isfinite(total) and total > 0 for total in (forecast, clock_now, calendar)):
        return season
    ratio, moved = max(latest["actual"], 0.5) / forecast, clock_now / calendar
    factor = float(np.clip(ratio * moved, *FACTOR_RANGE))
    return Season(factor=factor, windows=season.windows,
                  note=f"season ahead: forecast x {factor:.2f}, from the same window a year earlier on the seasonal "
                       f"clock ({latest['cutoff']} + {horizon_days} days: {latest['actual']:,} purchases, BG/NBD on "
                       f"the clock forecast {forecast:,.0f}, ratio {ratio:.2f}; the clock puts today's forecast at "
                       f"x {moved:.2f} the calendar's)")
