"""The log's daily tracking counts: new customers and repeat purchases per day up to the as-of day.

What a BG/NBD tracking plot (Fader, Hardie & Lee 2005, fig. 2) compares with the model's expectation, and
what the seasonal clock (``training.clock``) is fitted on. Counts of disjoint groups of customers add up
(:meth:`Tracking.merge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf
from churnclv.features._prep import Encoded, encode, history


@dataclass(frozen=True)
class Tracking:
    """Counts per calendar day from day number ``first_day`` to the as-of day (days since 1970-01-01).

    ``new``: customers whose first purchase day it is; ``repeats``: repeat purchase days (a customer's purchase
    days after their first) on it. ``clump_squares`` / ``clump_days``: the sum of squares and the sum of each
    customer's repeat purchase days in each calendar month; their ratio (:attr:`clumping`) is the factor by which
    customers buying several times in a month inflate the variance of a month's count above Poisson's."""

    first_day: int
    new: np.ndarray
    repeats: np.ndarray
    clump_squares: float = 0.0
    clump_days: float = 0.0

    @property
    def days(self) -> np.ndarray:
        """The day numbers counted."""
        return self.first_day + np.arange(len(self.new))

    @property
    def clumping(self) -> float:
        """Variance over mean of a month's repeat purchase days, where each customer's count is Poisson (>= 1)."""
        return max(1.0, self.clump_squares / self.clump_days) if self.clump_days > 0 else 1.0

    @classmethod
    def merge(cls, parts: Sequence[Tracking]) -> Tracking:
        """The counts of the union of disjoint groups of customers, tracked up to the same as-of day."""
        first, end = min(p.first_day for p in parts), max(p.first_day + len(p.new) for p in parts)
        new, repeats = np.zeros(end - first), np.zeros(end - first)
        for p in parts:
            at = slice(p.first_day - first, p.first_day - first + len(p.new))
            new[at] += p.new
            repeats[at] += p.repeats
        return cls(first, new, repeats, sum(p.clump_squares for p in parts), sum(p.clump_days for p in parts))


def tracking(transactions: pd.DataFrame | Encoded, *, as_of: AsOf) -> Tracking:
    """The :class:`Tracking` of the purchases (``amount >= 0``) on or before ``as_of``."""
    h = history(encode(transactions), as_of=as_of)
    if h.n == 0:
        return Tracking(h.as_of, np.zeros(1), np.zeros(1))
    start, span = int(h.first_day.min()), h.as_of - int(h.first_day.min()) + 1
    repeat = h.pair_day > h.first_day[h.pair_cust]
    day, customer = h.pair_day[repeat] - start, h.pair_cust[repeat]
    month = pd.to_datetime(start + np.arange(span), unit="D").to_period("M").asi8[day]  # months since 1970-01
    # the pairs are sorted by customer and day: each customer's months come in runs
    new_run = np.ones(len(day), dtype=bool)
    new_run[1:] = (customer[1:] != customer[:-1]) | (month[1:] != month[:-1])
    per_customer_month = np.diff(np.flatnonzero(np.r_[new_run, True])).astype(float)
    return Tracking(start, np.bincount(h.first_day - start, minlength=span).astype(float),
                    np.bincount(day, minlength=span).astype(float),
                    float((per_customer_month**2).sum()), float(per_customer_month.sum()))
