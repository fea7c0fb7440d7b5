"""One customer table at one as-of day: the features plus the BG/NBD outputs of a fitted CLV model."""

from __future__ import annotations

import pandas as pd

from churnclv.contract.columns import PREDICTION_COLUMNS
from churnclv.features import build_features


def snapshot(transactions: pd.DataFrame, *, as_of: pd.Timestamp, clv, horizon_days: int,
             events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features at ``as_of`` (with the touchpoint features when ``events`` are given) joined with
    ``clv.predict`` (prefixed ``bgnbd_``), one row per customer.

    ``clv=None`` (its fit failed at this cutoff) leaves the ``bgnbd_`` columns missing (NaN).
    """
    return with_clv(build_features(transactions, as_of=as_of, events=events), clv=clv, horizon_days=horizon_days)


def with_clv(table: pd.DataFrame, *, clv, horizon_days: int) -> pd.DataFrame:
    """A feature table joined with ``clv.predict`` (prefixed ``bgnbd_``); NaN columns for ``clv=None``."""
    if clv is None:
        outputs = pd.DataFrame(float("nan"), index=table.index, columns=list(PREDICTION_COLUMNS))
    else:
        outputs = clv.predict(table, horizon_days=horizon_days)
    return table.join(outputs.add_prefix("bgnbd_"))
