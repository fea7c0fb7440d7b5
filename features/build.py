"""``build_features``: every point-in-time feature family from one shared preparation."""

from __future__ import annotations

import pandas as pd

from churnclv.contract.columns import RFM_COLUMNS
from churnclv.contract.dates import AsOf
from churnclv.features._prep import Encoded, encode, history
from churnclv.features.behaviour import BEHAVIOUR_COLUMNS, behaviour_from_history
from churnclv.features.cohorts import COHORT_COLUMNS, cohort_from_history
from churnclv.features.events import event_columns
from churnclv.features.rfm import rfm_from_history

FEATURE_COLUMNS = (*RFM_COLUMNS, *BEHAVIOUR_COLUMNS, *COHORT_COLUMNS)
"""Column order of :func:`build_features` (all float64 except ``cohort`` str, ``tenure_months`` int64)."""


def build_features(transactions: pd.DataFrame | Encoded, *, as_of: AsOf,
                   events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Point-in-time customer features from transactions at or before ``as_of``.

    Parameters
    ----------
    transactions : canonical frame: customer_id (str), timestamp (tz-naive datetime64),
        amount (float64, negative = return) [, order_id, quantity, channel, category]; any
        row order. Rows after ``as_of`` are ignored. Or that frame's :func:`encode` once, to build
        features at many cutoffs without encoding it again.
    as_of : anything ``pd.Timestamp`` accepts; names a calendar day, the whole day included.
    events : the canonical events (:func:`features.validate_events`), or None: with them the touchpoint
        features (:data:`features.events.EVENT_FEATURES`, from events up to ``as_of``) follow the others.

    Returns
    -------
    DataFrame indexed by ``customer_id`` (sorted), one row per customer with a purchase
    (amount >= 0) at or before ``as_of``, columns ``FEATURE_COLUMNS``:

    - RFM (lifetimes, ``freq="D"``): frequency (repeat purchase days), recency (days first to
      last purchase day), T (days first purchase day to as_of), monetary_value (mean daily
      spend over repeat purchase days, 0 without repeats);
    - behaviour: purchases_{w}d / spend_{w}d for w in 30, 90, 180, 365 (distinct purchase days
      / purchase amount in (as_of - w, as_of]), n_transactions, total_spend, days_since_last,
      gap_mean, gap_std (ddof=1), gap_last (days between purchase days), overdue_ratio,
      spend_trend, avg_basket, return_rate, n_categories, n_channels (NaN if the column is
      absent);
    - cohort: cohort ("YYYY-MM" of the first purchase), tenure_months (int).

    Every value of a customer depends only on that customer's own rows.
    """
    h = history(encode(transactions), as_of=as_of)
    columns = rfm_from_history(h) | behaviour_from_history(h) | cohort_from_history(h)
    if events is not None:
        columns |= event_columns(events, as_of=as_of, customers=h.cust.ids)
    # the arrays are fresh and ours alone: no copy, no consolidation into one block (~0.1 s at 500k rows)
    return pd.DataFrame(columns, index=h.cust.ids, copy=False)
