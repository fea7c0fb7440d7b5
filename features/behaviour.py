"""Behavioural features: recent activity windows, purchase gaps, spend trend, baskets, returns.

All windows are relative to the as-of day ``D`` (day numbers): a window of ``w`` days is
``(D - w, D]``, i.e. purchase days with ``D - day < w``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf
from churnclv.features._prep import (
    WINDOWS,
    History,
    encode,
    history,
    per_customer_distinct,
    weighted_sum,
    window_table,
)

BEHAVIOUR_COLUMNS = (
    *(f"purchases_{w}d" for w in WINDOWS),
    *(f"spend_{w}d" for w in WINDOWS),
    "n_transactions", "total_spend", "days_since_last", "gap_mean", "gap_std", "gap_last",
    "overdue_ratio", "spend_trend", "avg_basket", "return_rate", "n_categories", "n_channels",
)


def window_features(h: History) -> dict[str, np.ndarray]:
    """Distinct purchase days and spend in the trailing windows, total spend and spend trend."""
    days = np.cumsum(window_table(h.pair_cust, h.pair_day, h.as_of, h.n), axis=1, dtype=np.float64)
    spend = np.cumsum(h.spend_bands, axis=1)
    recent, before = spend[:, 1], h.spend_bands[:, 2]  # (D-90, D] and (D-180, D-90]
    both = recent + before
    trend = np.divide(recent - before, both, out=np.zeros(h.n), where=both > 0)
    out = {f"purchases_{w}d": days[:, j] for j, w in enumerate(WINDOWS)}
    out |= {f"spend_{w}d": spend[:, j] for j, w in enumerate(WINDOWS)}
    return out | {"total_spend": h.total_spend, "spend_trend": trend}


def _sum_of_squared_gaps(pair_day: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per customer, the sum of squared differences between consecutive purchase days.

    ``pair_day`` holds each customer's days in a run beginning at ``starts``; differences across
    two customers are zeroed, so each run's sum is that customer's own (int64, exact).
    """
    steps = np.zeros(len(pair_day), dtype=np.int64 if len(pair_day) == 0 else pair_day.dtype)
    np.subtract(pair_day[1:], pair_day[:-1], out=steps[:-1])
    steps[starts[1:] - 1] = 0
    if len(steps) and int(steps.max()) >= 46_341:  # its square would overflow int32
        steps = steps.astype(np.int64)
    np.multiply(steps, steps, out=steps)
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(steps, starts, dtype=np.int64)


def gap_features(h: History) -> dict[str, np.ndarray]:
    """Days since the last purchase day and the gaps (days) between consecutive purchase days.

    ``gap_mean`` and ``gap_last`` need one gap, ``gap_std`` (sample, ddof=1) needs two; NaN
    otherwise. ``overdue_ratio`` = days_since_last / gap_mean.
    """
    gaps_n = (h.n_days - 1).astype(np.float64)
    gaps_sum = (h.last_day - h.first_day).astype(np.float64)
    last = h.starts + h.n_days - 1
    gaps_sq = _sum_of_squared_gaps(h.pair_day, h.starts).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(gaps_n >= 1, gaps_sum / gaps_n, np.nan)
        var = (gaps_n * gaps_sq - gaps_sum * gaps_sum) / (gaps_n * (gaps_n - 1))
        std = np.where(gaps_n >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)
    gap_last = np.where(gaps_n >= 1, (h.pair_day[last] - h.pair_day[last - 1]).astype(np.float64), np.nan)
    since = (h.as_of - h.last_day).astype(np.float64)
    return {
        "days_since_last": since, "gap_mean": mean, "gap_std": std, "gap_last": gap_last,
        "overdue_ratio": since / mean,
    }


def n_transactions(h: History) -> np.ndarray:
    """Purchase rows per customer, or distinct ``order_id`` among them when that column exists.

    A purchase row without an order id counts as its own transaction.
    """
    if not h.enc.has("order_id"):
        return h.cust.p_rows.astype(np.float64)
    orders = h.enc.column_codes("order_id")[h.cust.purchase]
    missing = orders < 0
    orders = np.where(missing, orders.max(initial=-1) + 1 + np.cumsum(missing), orders)
    return per_customer_distinct(h.p_cust, orders, h.n).astype(np.float64)


def distinct_values(h: History, column: str) -> np.ndarray:
    """Distinct non-missing values of ``column`` among each customer's rows up to as-of.

    NaN for every customer when the frame has no such column.
    """
    if not h.enc.has(column):
        return np.full(h.n, np.nan)
    values = h.enc.column_codes(column)[h.cust.history]
    cust = h.cust.rank[h.enc.codes[h.cust.history]]
    keep = (cust >= 0) & (values >= 0)
    return per_customer_distinct(cust[keep], values[keep], h.n).astype(np.float64)


def returned_amount(h: History) -> np.ndarray:
    """Total |amount| of returns (amount < 0) at or before as-of, per customer."""
    rows = h.cust.history & (h.enc.amount < 0)
    cust = h.cust.rank[h.enc.codes[rows]]
    keep = cust >= 0
    return weighted_sum(cust[keep], -h.enc.amount[rows][keep], h.n)


def return_rate(returned: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """returned / spend; 0 without returns, NaN for returns without any spend."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(spend > 0, returned / spend, np.nan)
    return np.where(returned > 0, rate, 0.0)


def behaviour_from_history(h: History) -> dict[str, np.ndarray]:
    """All behaviour columns (float64 arrays aligned with ``h.cust.ids``), in BEHAVIOUR_COLUMNS order.

    ``avg_basket`` = total_spend / n_transactions; ``return_rate`` = returned amount / total
    spend (0 without returns, NaN when there are returns but total spend is 0).
    """
    out = window_features(h) | gap_features(h)
    out["n_transactions"] = n_transactions(h)
    out["avg_basket"] = out["total_spend"] / out["n_transactions"]
    out["return_rate"] = return_rate(returned_amount(h), out["total_spend"])
    out["n_categories"] = distinct_values(h, "category")
    out["n_channels"] = distinct_values(h, "channel")
    return {name: out[name] for name in BEHAVIOUR_COLUMNS}


def behaviour_features(transactions: pd.DataFrame, *, as_of: AsOf) -> pd.DataFrame:
    """Behavioural features per customer with a purchase at or before ``as_of``.

    Parameters
    ----------
    transactions : canonical frame (customer_id, timestamp, amount [, order_id, channel, category]).
    as_of : the last calendar day observed (whole day included).

    Returns
    -------
    DataFrame indexed by sorted ``customer_id`` with BEHAVIOUR_COLUMNS (float64; days,
    currency units, counts).
    """
    h = history(encode(transactions), as_of=as_of)
    return pd.DataFrame(behaviour_from_history(h), index=h.cust.ids)
