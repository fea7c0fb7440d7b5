"""The fitted LightGBM models as data: a booster (LightGBM's own text format), its feature list and,
for churn, the Platt calibration (two numbers). Fitting lives in ``training.churn``."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

#: Up to this many rows LightGBM predicts on one thread: for a few customers (a posted history) starting its
#: OpenMP threads costs far more than the trees (~10 ms against ~0.05 ms for one row on a loaded machine).
ONE_THREAD_ROWS = 256


def _predict(booster: lgb.Booster, matrix, **kwargs) -> np.ndarray:
    """``booster.predict`` with the thread count by size (:data:`ONE_THREAD_ROWS`; 0: OpenMP's default). The
    prediction of a row never depends on the thread count."""
    return booster.predict(matrix, num_threads=1 if len(matrix) <= ONE_THREAD_ROWS else 0, **kwargs)


@dataclass(frozen=True)
class _Boosted:
    """A booster and its feature list: what both scorers explain and rank features by."""

    booster: lgb.Booster
    features: tuple[str, ...]

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-customer feature contributions to the raw score (LightGBM ``pred_contrib``: the churn log-odds
        of :class:`ChurnScorer`, the log of expected purchases of :class:`PurchaseScorer`)."""
        values = _predict(self.booster, frame[list(self.features)], pred_contrib=True)
        return pd.DataFrame(values[:, :-1], index=frame.index, columns=list(self.features))

    def importance(self) -> pd.Series:
        gain = self.booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=list(self.features)).sort_values(ascending=False)


@dataclass(frozen=True)
class ChurnScorer(_Boosted):
    """Probability of no purchase in the horizon: ``sigmoid(slope * raw + intercept)`` of the booster's raw
    score (``calibration = (slope, intercept)``; ``None`` = the uncalibrated sigmoid)."""

    calibration: tuple[float, float] | None = None

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        return _predict(self.booster, frame[list(self.features)], raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of no purchase in the horizon, one per row."""
        raw = self._raw(frame)
        slope, intercept = self.calibration or (1.0, 0.0)
        return 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))

@dataclass(frozen=True)
class PurchaseScorer(_Boosted):
    """Expected number of purchase days in the horizon (a LightGBM Poisson booster)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return _predict(self.booster, frame[list(self.features)])


def top_drivers(contributions: pd.DataFrame, values: pd.DataFrame, *, k: int = 3) -> pd.Series:
    """The ``k`` features pushing each customer's churn risk up the most, as lists of dicts."""
    contrib = contributions.to_numpy()
    order = np.argsort(-contrib, axis=1)[:, :k]
    names = np.asarray(contributions.columns)
    vals = np.asarray(values[list(contributions.columns)])  # a snapshot frame or its Columns (float64)
    rows = np.arange(len(contrib))[:, None]
    return pd.Series(
        [
            [{"feature": f, "value": float(v), "contribution": round(float(c), 4)} for f, v, c in zip(fs, vs, cs)]
            for fs, vs, cs in zip(names[order], vals[rows, order], contrib[rows, order])
        ],
        index=contributions.index,
        name="drivers",
    )
