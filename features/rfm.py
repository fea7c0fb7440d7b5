"""RFM summary in the conventions of ``lifetimes.utils.summary_data_from_transaction_data``.

Daily resolution (``freq="D"``): purchases on the same calendar day count once and their
amounts are summed into that day's spend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf
from churnclv.features._prep import History, encode, history, weighted_sum


def rfm_from_history(h: History) -> dict[str, np.ndarray]:
    """RFM columns (float64 arrays aligned with ``h.cust.ids``).

    Returns
    -------
    dict with
        frequency : number of repeat purchase days (distinct purchase days - 1).
        recency : days from the first to the last purchase day.
        T : days from the first purchase day to the as-of day.
        monetary_value : mean daily spend over the repeat purchase days (0 without repeats).
    """
    frequency = (h.n_days - 1).astype(np.float64)
    on_first_day = h.p_day == h.first_day[h.p_cust]
    first_day_spend = weighted_sum(h.p_cust[on_first_day], h.p_amount[on_first_day], h.n)
    repeat_spend = h.total_spend - first_day_spend
    monetary = np.divide(repeat_spend, frequency, out=np.zeros(h.n), where=frequency > 0)
    return {
        "frequency": frequency,
        "recency": (h.last_day - h.first_day).astype(np.float64),
        "T": (h.as_of - h.first_day).astype(np.float64),
        "monetary_value": monetary,
    }


def rfm_features(transactions: pd.DataFrame, *, as_of: AsOf) -> pd.DataFrame:
    """Frequency, recency, T and monetary value per customer, as of a calendar day.

    Parameters
    ----------
    transactions : canonical frame (customer_id, timestamp, amount, ...). Returns (amount < 0)
        are ignored here.
    as_of : the last calendar day observed (whole day included).

    Returns
    -------
    DataFrame indexed by sorted ``customer_id``, one row per customer with a purchase at or
    before ``as_of``; columns ``frequency, recency, T, monetary_value`` (float64, days and
    currency units), equal to lifetimes' summary with ``freq="D"``.
    """
    h = history(encode(transactions), as_of=as_of)
    return pd.DataFrame(rfm_from_history(h), index=h.cust.ids)
