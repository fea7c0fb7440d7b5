"""One customer table at one as-of day: the features plus the BG/NBD outputs of a fitted CLV model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.contract.columns import PREDICTION_COLUMNS
from churnclv.features import build_features
from churnclv.scoring.clv import rfm_values


def snapshot(transactions: pd.DataFrame, *, as_of: pd.Timestamp, clv, horizon_days: int,
             events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features at ``as_of`` (with the touchpoint features when ``events`` are given) joined with
    ``clv.predict`` (prefixed ``bgnbd_``), one row per customer.

    ``clv=None`` (its fit failed at this cutoff) leaves the ``bgnbd_`` columns missing (NaN).
    """
    return with_clv(build_features(transactions, as_of=as_of, events=events), clv=clv, horizon_days=horizon_days)


def with_clv(table: pd.DataFrame, *, clv, horizon_days: int) -> pd.DataFrame:
    """A feature table joined with ``clv.predict`` (prefixed ``bgnbd_``); NaN columns for ``clv=None``."""
    return Columns(table, clv_outputs(table, clv=clv, horizon_days=horizon_days)).frame()


def clv_outputs(table: pd.DataFrame, *, clv, horizon_days: int) -> dict[str, np.ndarray]:
    """``clv.predict`` of a feature table as arrays, named ``bgnbd_<column>``: the columns :func:`with_clv` adds
    (NaN for ``clv=None``)."""
    if clv is None:
        return {f"bgnbd_{c}": np.full(len(table), np.nan) for c in PREDICTION_COLUMNS}
    outputs = clv.predict_values(rfm_values(table), horizon_days=horizon_days)
    return {f"bgnbd_{c}": v for c, v in outputs.items()}


class Columns:
    """A snapshot read as arrays, without joining it: the CLV model's outputs (``bgnbd_*``, :func:`clv_outputs`)
    beside a feature frame, or a joined snapshot alone (``outputs`` empty).

    ``columns[name]`` is one float64 array; ``columns[[names]]`` the matrix of those columns (float64, one row per
    customer: what the boosters read), or the joined frame's columns where one is not numeric; :meth:`frame` is
    the joined snapshot (:func:`with_clv`)."""

    def __init__(self, features: pd.DataFrame, outputs: dict[str, np.ndarray] | None = None):
        self.features, self.outputs = features, dict(outputs or {})
        self._block: tuple[np.ndarray, dict[str, int]] | None = None

    @property
    def index(self) -> pd.Index:
        return self.features.index

    def __len__(self) -> int:
        return len(self.features)

    def _numeric(self) -> tuple[np.ndarray, dict[str, int]]:
        """The frame's numeric columns as one float64 matrix (read once, when the boosters first need it) and
        each one's position in it."""
        if self._block is None:
            names = [c for c, dtype in self.features.dtypes.items()
                     if pd.api.types.is_numeric_dtype(dtype) and c not in self.outputs]
            matrix = self.features[names].to_numpy(dtype=np.float64, na_value=np.nan)
            self._block = matrix, {c: i for i, c in enumerate(names)}
        return self._block

    def __getitem__(self, key):
        if isinstance(key, str):
            value = self.outputs.get(key)
            if value is not None:
                return value
            if self._block is not None and key in self._block[1]:
                return self._block[0][:, self._block[1][key]]
            return self.features[key].to_numpy(dtype=np.float64)
        names = list(key)
        position = self._numeric()[1]
        if all(n in self.outputs or n in position for n in names):
            return np.column_stack([self[n] for n in names]) if names else np.empty((len(self), 0))
        return self.frame()[names]

    def frame(self) -> pd.DataFrame:
        """The joined snapshot: the features, then the outputs."""
        if not self.outputs:
            return self.features
        return self.features.join(pd.DataFrame(self.outputs, index=self.features.index))
