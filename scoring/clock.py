"""The seasonal clock: BG/NBD on operational time, where a day of a busy month counts for more than one.

BG/NBD's purchase process is stationary. Where buying follows the calendar (a strong fourth quarter), the
model runs on an operational clock S(t) = ∫ s(month of t) dt instead: a customer's recency and age and the
horizon ahead are measured in operational days, whose rate ``s`` per calendar day is fitted from the log
(``training.clock``) with a mean of 1 over the year. A customer quiet through the peak is then told apart from
one quiet through a lull, and the horizon ahead is as long as its season makes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf
from churnclv.features._prep import day_number
from churnclv.scoring.btyd import bgnbd_expected_purchases, bgnbd_p_no_purchase, bgnbd_shape

MONTHS = 12
#: The snapshot column of the clocked BG/NBD's P(no purchase in the horizon) (:meth:`ClockedBGNBD.p_no_purchase`).
CLOCK_COLUMN = "clock_p_no_purchase"


@dataclass(frozen=True)
class Clock:
    """Operational days per calendar day in each month of the year (January first), averaging 1 over a year."""

    rate: tuple[float, ...]

    def __post_init__(self):
        if len(self.rate) != MONTHS or not all(np.isfinite(self.rate)) or min(self.rate) <= 0:
            raise ValueError(f"a clock has {MONTHS} positive monthly rates, not {self.rate!r}")

    def days_rate(self, first: int, last: int) -> np.ndarray:
        """``s`` of every day number from ``first`` to ``last``."""
        months = pd.to_datetime(np.arange(first, last + 1), unit="D").month.to_numpy()
        return np.asarray(self.rate)[months - 1]

    def elapsed(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Operational days from day number ``start`` to ``end`` (the days ``start + 1 .. end``, as calendar
        days count them: equal lengths where every rate is 1)."""
        start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
        if start.size == 0:
            return np.zeros(start.shape)
        low = int(min(start.min(), end.min()))
        cumulative = np.concatenate([[0.0], np.cumsum(self.days_rate(low + 1, int(max(start.max(), end.max()))))])
        return cumulative[end - low] - cumulative[start - low]

    def horizon(self, as_of: AsOf, days: int) -> float:
        """Operational days in the ``days`` calendar days after ``as_of``."""
        today = day_number(as_of)
        return float(self.elapsed(np.array([today]), np.array([today + days]))[0])

    def durations(self, recency: np.ndarray, T: np.ndarray, *, as_of: AsOf) -> tuple[np.ndarray, np.ndarray]:
        """A customer's recency and age T (calendar days, as of ``as_of``) in operational days."""
        today = day_number(as_of)
        first = today - np.rint(np.asarray(T, dtype=np.float64)).astype(np.int64)
        last = first + np.rint(np.asarray(recency, dtype=np.float64)).astype(np.int64)
        return self.elapsed(first, last), self.elapsed(first, np.full(first.shape, today))

    def rfm(self, rfm: pd.DataFrame, *, as_of: AsOf) -> pd.DataFrame:
        """An RFM table (recency, T in days, as of ``as_of``) with recency and T in operational days."""
        recency, T = self.durations(rfm["recency"], rfm["T"], as_of=as_of)
        return rfm.assign(recency=recency, T=T)

    def to_dict(self) -> dict:
        return {"rate": [float(r) for r in self.rate]}

    @classmethod
    def from_dict(cls, data: dict) -> Clock:
        return cls(tuple(float(r) for r in data["rate"]))


@dataclass(frozen=True)
class ClockedBGNBD:
    """A BG/NBD model fitted on a :class:`Clock`'s operational days (``bgnbd``: r, alpha, a, b and
    ``time_unit_days``, in operational days)."""

    clock: Clock
    bgnbd: dict

    def p_no_purchase(self, table, *, as_of: AsOf, horizon_days: int) -> np.ndarray:
        """P(no purchase in the ``horizon_days`` after ``as_of``) of each customer of a feature table (frequency,
        recency, T in calendar days; a frame or ``scoring.snapshot.Columns``)."""
        return bgnbd_p_no_purchase(*self._arguments(table, as_of=as_of, horizon_days=horizon_days),
                                   **bgnbd_shape(self.bgnbd))

    def expected_purchases(self, table, *, as_of: AsOf, horizon_days: int) -> np.ndarray:
        """Expected purchases in the ``horizon_days`` after ``as_of`` of each customer of a feature table."""
        return bgnbd_expected_purchases(*self._arguments(table, as_of=as_of, horizon_days=horizon_days),
                                        **bgnbd_shape(self.bgnbd))

    def _arguments(self, table, *, as_of: AsOf, horizon_days: int) -> tuple:
        """(t, x, t_x, T) of the closed forms: the horizon, recency and age in the fit's operational units."""
        recency, T = self.clock.durations(table["recency"], table["T"], as_of=as_of)
        unit = self.bgnbd["time_unit_days"]
        return (self.clock.horizon(as_of, horizon_days) / unit, np.asarray(table["frequency"], dtype=np.float64),
                recency / unit, T / unit)

    def to_dict(self) -> dict:
        return {"clock": self.clock.to_dict(), "bgnbd": {k: float(v) for k, v in self.bgnbd.items()}}

    @classmethod
    def from_dict(cls, data: dict | None) -> ClockedBGNBD | None:
        return None if data is None else cls(Clock.from_dict(data["clock"]), dict(data["bgnbd"]))
