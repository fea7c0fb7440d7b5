"""Tiny canonical transaction frames for hand-computed tests."""

import numpy as np
import pandas as pd


def canonical(ids, timestamps, amounts, **extra) -> pd.DataFrame:
    """A canonical frame from parallel sequences (timestamps: ISO strings or Timestamps)."""
    columns = {
        "customer_id": pd.array(list(ids), dtype="str"),
        "timestamp": pd.to_datetime(list(timestamps), format="ISO8601").astype("datetime64[ns]"),
        "amount": np.array(amounts, dtype=float),
    }
    columns |= {name: pd.array(values, dtype="str") for name, values in extra.items()}
    return pd.DataFrame(columns)


def frame(rows, **extra) -> pd.DataFrame:
    """rows: (customer, timestamp, amount) tuples."""
    return canonical(*zip(*rows), **extra)
