"""Forward-looking labels: what each customer does in the horizon after the as-of day."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf
from churnclv.features._prep import (
    Customers,
    Encoded,
    combine,
    customers,
    encode,
    unique_sorted,
    weighted_sum,
)


def check_horizon(horizon_days: Any) -> int:
    """``horizon_days`` as an int, or ValueError unless it is a positive integer."""
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, numbers.Integral) or horizon_days < 1:
        raise ValueError(f"horizon_days must be a positive integer number of days, got {horizon_days!r}")
    return int(horizon_days)


def labels_from_encoded(enc: Encoded, cust: Customers, horizon_days: int) -> dict[str, np.ndarray]:
    """Distinct purchase days and purchase amount in ``(as_of, as_of + horizon_days]``.

    Arrays are aligned with ``cust.ids``.
    """
    window = (enc.day > cust.as_of) & (enc.day <= cust.as_of + horizon_days) & (enc.amount >= 0)
    owner = cust.rank[enc.codes[window]]
    known = owner >= 0
    owner, day = owner[known], enc.day[window][known]
    spend = weighted_sum(owner, enc.amount[window][known], cust.n)
    days = unique_sorted(combine(owner, day - (cust.as_of + 1), horizon_days, cust.n))
    purchases = np.bincount(days // horizon_days, minlength=cust.n)
    return {"purchases": purchases, "spend": spend, "churned": purchases == 0}


def make_labels(transactions: pd.DataFrame | Encoded, *, as_of: AsOf, horizon_days: int) -> pd.DataFrame:
    """Purchases and spend in the ``horizon_days`` days after ``as_of``.

    Parameters
    ----------
    transactions : canonical frame (customer_id, timestamp, amount, ...); must extend past
        ``as_of`` for the labels to mean anything (not checked here); or its :func:`encode`.
    as_of : the last observed calendar day; the label window starts the day after it.
    horizon_days : positive integer; the window is ``(as_of, as_of + horizon_days]`` in days,
        both boundary days whole.

    Returns
    -------
    DataFrame indexed by sorted ``customer_id``, one row per customer with a purchase at or
    before ``as_of``: ``purchases`` (int64, distinct purchase days in the window), ``spend``
    (float64, purchase amount in the window, returns excluded) and ``churned`` (bool,
    ``purchases == 0``).
    """
    horizon = check_horizon(horizon_days)
    enc = encode(transactions)
    cust = customers(enc, as_of=as_of)
    return pd.DataFrame(labels_from_encoded(enc, cust, horizon), index=cust.ids)
