"""Fitting the seasonal clock (:class:`scoring.clock.Clock`) from the log's own tracking counts.

A calendar BG/NBD fit is stationary: what it expects of the whole base on each day (every customer's
expected repeat purchases since their first, summed by first-purchase day: the tracking curve of Fader,
Hardie & Lee 2005) is smooth. The ratio of the repeat purchases that happened to that expectation, month by
month over up to two years before the as-of day, is the season, once two other things are taken out:

- **a trend.** A base that grows or fades beyond the model's dropout moves every month alike over time; a
  Poisson regression of the monthly counts on month-of-year effects and a linear trend (the expectation as
  offset) separates the two. That needs a month seen twice: 13 months of history at least.
- **noise.** The month effects shrink toward none by their own precision (positive-part James-Stein on the
  log scale, the count's variance inflated by customers buying several times a month): a log whose months
  spread less than twice what their noise alone would give gets no clock at all (:data:`MIN_KEPT`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor

from churnclv.contract import first_line
from churnclv.contract.columns import RFM_COLUMNS
from churnclv.contract.dates import SEASON_YEAR_DAYS
from churnclv.features.tracking import Tracking
from churnclv.scoring.btyd import bgnbd_expected_purchases, bgnbd_shape
from churnclv.scoring.clock import MONTHS, Clock, ClockedBGNBD
from churnclv.training.mle import CLVFitError

#: The months a clock is fitted on: up to two years before the as-of day, the first :data:`SKIP_DAYS` of the
#: log left out (the youngest base, where the expectation is least sure); at least a year and a month.
YEARS = 2
SKIP_DAYS = 28
MIN_MONTH_CELLS = MONTHS + 1
#: A clock is fitted only where the months' spread is at least twice what their noise alone would give (the
#: shrinkage keeps at least half of the month effects: about p < 0.02 for 11 degrees of freedom) and some rate
#: moves by this much. A nearly saturated fit at 13 to 16 months of history keeps a quarter to a half of a steady
#: log's noise (the zoo's one_time and all_drop drawn with seed 2: rates up to 1.12, AUC within 0.0001 of the
#: calendar's); the seasonal shapes keep over 90%.
MIN_KEPT = 0.5
MIN_EFFECT = 0.05
#: The slowest a month may run (as the season factor's floor, ``training.season.FACTOR_RANGE``): a month without
#: a repeat purchase does not stop the clock.
MIN_RATE = 0.02
#: Repeat purchase days the fitted months need, 30 a month on average (the season factor's precision,
#: ``training.season.MIN_WINDOW_PURCHASES``): a log with a handful has no season to tell, and a Poisson fit on
#: months of zeros runs its effects off to any value.
MIN_REPEATS = MONTHS * 30
DAYS_IN_MONTH = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@dataclass(frozen=True)
class ClockFit:
    """A fitted :class:`Clock` (None: none) and a line saying why or why not."""

    clock: Clock | None
    note: str
    shrinkage: float = 0.0  # the share of the month effects kept (1: all, 0: none)
    flat: bool = False  # the months were tested and show no season (not merely too few to tell)


def expected_repeats(new: np.ndarray, *, bgnbd: dict, time_unit_days: float) -> np.ndarray:
    """The repeat purchases a BG/NBD model (``bgnbd``: r, alpha, a, b in ``time_unit_days``) expects on each day of
    a tracking count whose ``new`` customers arrive on those days: each day's cohort times the expected
    purchases of a new customer on each later day (the first purchase day counts none)."""
    days = np.arange(len(new) + 1, dtype=np.float64) / time_unit_days
    zero = np.zeros_like(days)
    cumulative = bgnbd_expected_purchases(days, zero, zero, zero, **bgnbd_shape(bgnbd))
    return np.convolve(new, np.diff(cumulative, prepend=0.0))[: len(new)]


def month_cells(track: Tracking, expected: np.ndarray) -> pd.DataFrame:
    """Repeat purchases and their expectation per calendar month of the fitted span (:data:`YEARS`)."""
    keep = slice(max(SKIP_DAYS, len(track.new) - YEARS * SEASON_YEAR_DAYS), None)
    dates = pd.to_datetime(track.days[keep], unit="D")
    cells = pd.DataFrame({"cell": dates.to_period("M"), "month": dates.month, "actual": track.repeats[keep],
                          "expected": expected[keep], "day": np.arange(len(dates), dtype=np.float64)})
    out = cells.groupby("cell").agg(month=("month", "first"), actual=("actual", "sum"),
                                    expected=("expected", "sum"), day=("day", "mean"))
    return out[out["expected"] > 0]


def fit_clock(track: Tracking, *, bgnbd: dict, time_unit_days: float) -> ClockFit:
    """The clock of a log's :class:`Tracking` up to its as-of day, against the calendar BG/NBD fit ``bgnbd``."""
    cells = month_cells(track, expected_repeats(track.new, bgnbd=bgnbd, time_unit_days=time_unit_days))
    if len(cells) < MIN_MONTH_CELLS or cells["month"].nunique() < MONTHS:
        return ClockFit(None, f"no seasonal clock: {len(cells)} months of history after the first {SKIP_DAYS} days "
                              f"(a clock needs {MIN_MONTH_CELLS}, to tell a season from a trend)")
    if cells["actual"].sum() < MIN_REPEATS:
        return ClockFit(None, f"no seasonal clock: {cells['actual'].sum():,.0f} repeat purchase days in the last "
                              f"{len(cells)} months (a clock needs {MIN_REPEATS})")
    design = np.column_stack([(cells["month"].to_numpy()[:, None] == np.arange(1, MONTHS + 1)).astype(float),
                              cells["day"].to_numpy() / SEASON_YEAR_DAYS])
    glm = PoissonRegressor(alpha=0.0, fit_intercept=False, max_iter=1000)
    glm.fit(design, cells["actual"] / cells["expected"], sample_weight=cells["expected"])
    effect = glm.coef_[:MONTHS] - glm.coef_[:MONTHS].mean()
    bought = cells.groupby("month")["actual"].sum().reindex(range(1, MONTHS + 1)).to_numpy()
    noise = track.clumping / np.maximum(bought, 1.0)  # each month effect's variance, about
    spread = float((effect**2).sum())
    keep = max(0.0, 1.0 - (MONTHS - 1) * float(noise.mean()) / spread) if spread > 0 else 0.0
    rate = year_mean_one(np.exp(keep * effect))
    rate = year_mean_one(np.maximum(rate, MIN_RATE))  # floored, a year's mean 1 again (the floor barely moves)
    if keep < MIN_KEPT or np.abs(rate - 1).max() < MIN_EFFECT:
        return ClockFit(None, f"no seasonal clock: the months differ too little beyond their noise (kept {keep:.0%} "
                              f"of their effects, needs {MIN_KEPT:.0%}; largest move {np.abs(rate - 1).max():.0%})",
                        keep, flat=True)
    busiest = np.argsort(rate)[::-1][:3]
    names = ", ".join(f"{pd.Timestamp(2001, m + 1, 1):%b} x{rate[m]:.2f}" for m in sorted(busiest))
    return ClockFit(Clock(tuple(float(r) for r in rate)),
                    f"seasonal clock from {len(cells)} months (kept {keep:.0%} of the month effects): busiest {names}",
                    keep)


def year_mean_one(rate: np.ndarray) -> np.ndarray:
    """Monthly rates scaled to a mean of 1 over a year's days."""
    return rate / (rate @ DAYS_IN_MONTH / DAYS_IN_MONTH.sum())


def fit_clocked(track: Tracking, rfm: pd.DataFrame, *, as_of: pd.Timestamp, clv,
                clv_model: Callable) -> tuple[ClockedBGNBD | None, ClockFit]:
    """The clock of a log (its :class:`Tracking` up to ``as_of``, against its calendar fit ``clv``) and a BG/NBD
    model ``clv_model()`` fitted on its RFM table ``rfm`` at ``as_of`` in the clock's operational days (None:
    none), with the :class:`ClockFit` that says why or why not."""
    fitted = fit_clock(track, bgnbd=clv.bgnbd_params_, time_unit_days=clv.bgnbd_params_["time_unit_days"])
    if fitted.clock is None:
        return None, fitted
    try:
        return fit_on_clock(fitted.clock, rfm, as_of=as_of, clv_model=clv_model), fitted
    except CLVFitError as exc:
        return None, replace(fitted, note=f"no seasonal clock: BG/NBD could not be fitted on it ({first_line(exc)})")


def fit_on_clock(clock: Clock, rfm: pd.DataFrame, *, as_of: pd.Timestamp, clv_model: Callable) -> ClockedBGNBD:
    """BG/NBD ``clv_model()`` fitted on the RFM table ``rfm`` (calendar days, as of ``as_of``) in ``clock``'s
    operational days. Raises :class:`CLVFitError` where it cannot be fitted."""
    model = clv_model().fit(clock.rfm(rfm[list(RFM_COLUMNS)], as_of=as_of))
    return ClockedBGNBD(clock, dict(model.bgnbd_params_))
