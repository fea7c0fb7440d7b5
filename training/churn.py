"""Churn and purchase-count models trained on stacked past snapshots (rolling origin).

A snapshot is the feature table at one cutoff day plus the BG/NBD outputs of a CLV model fitted on
data up to that day; its labels look forward ``horizon_days`` from the cutoff. Training uses only
cutoffs whose label windows end on or before the as-of date, so nothing after it is ever seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from features import ChurnclvError

NON_FEATURES = ("cohort",)
RFM = ("frequency", "recency", "T", "monetary_value")


class TrainingError(ChurnclvError):
    """Training cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class CutoffPlan:
    """How many past snapshots to stack: ``n_cutoffs`` at most, ``step_days`` apart."""

    n_cutoffs: int = 11
    step_days: int = 14
    min_history_days: int = 56


def cutoff_dates(
    *, as_of: pd.Timestamp, first_day: pd.Timestamp, horizon_days: int, plan: CutoffPlan
) -> list[pd.Timestamp]:
    """Cutoffs (oldest first) whose label windows ``(c, c + horizon_days]`` end on or before ``as_of``.

    Each cutoff keeps at least ``plan.min_history_days`` of history after ``first_day``.
    Raises TrainingError, naming how much history is needed, when none fits.
    """
    last = as_of - pd.Timedelta(days=horizon_days)
    candidates = [last - pd.Timedelta(days=k * plan.step_days) for k in range(plan.n_cutoffs)]
    cutoffs = sorted(c for c in candidates if (c - first_day).days >= plan.min_history_days)
    if not cutoffs:
        have = (as_of - first_day).days
        need = horizon_days + plan.min_history_days
        raise TrainingError(
            f"too little history before {as_of:%Y-%m-%d}: {have} days from {first_day:%Y-%m-%d}, and one "
            f"training snapshot needs {need} days ({plan.min_history_days} of history + a {horizon_days}-day "
            "label window). Use more data, a later --as-of or a shorter --horizon-days."
        )
    return cutoffs


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs: every numeric column of a snapshot except labels and bookkeeping."""
    skip = set(NON_FEATURES) | {"cutoff", "purchases", "spend", "churned"}
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]


def _split_last(stacked: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Train on every cutoff but the latest, validate on the latest (time-based, never random)."""
    cutoffs = stacked["cutoff"].unique()
    if len(cutoffs) < 2:
        return stacked, None
    latest = stacked["cutoff"] == cutoffs.max()
    return stacked.loc[~latest], stacked.loc[latest]


@dataclass(frozen=True)
class BoostSettings:
    """LightGBM settings shared by the churn classifier and the purchase-count regressor."""

    n_estimators: int = 2000
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    early_stopping_rounds: int = 100
    fixed_rounds: int = 200
    seed: int = 42

    def estimator_args(self) -> dict:
        return dict(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1,
            colsample_bytree=self.colsample_bytree,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=2,
            verbose=-1,
        )


def _fit_boosted(estimator, stacked: pd.DataFrame, target: str, columns: list[str], settings: BoostSettings):
    """Fit with early stopping on the latest cutoff; with a single cutoff, a fixed number of rounds."""
    train, valid = _split_last(stacked)
    if valid is None:
        estimator.set_params(n_estimators=settings.fixed_rounds)
        return estimator.fit(train[columns], train[target]), None
    estimator.fit(
        train[columns],
        train[target],
        eval_set=[(valid[columns], valid[target])],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    return estimator, valid


class ChurnModel:
    """LightGBM classifier of ``churned``, Platt-calibrated on a later cutoff than it was trained on.

    Parameters
    ----------
    settings : LightGBM settings (seeded, deterministic).
    """

    def __init__(self, *, settings: BoostSettings = BoostSettings()):
        self.settings = settings

    def fit(self, stacked: pd.DataFrame) -> "ChurnModel":
        self.features_ = feature_columns(stacked)
        model = lgb.LGBMClassifier(objective="binary", **self.settings.estimator_args())
        self.model_, valid = _fit_boosted(model, stacked, "churned", self.features_, self.settings)
        self.best_iteration_ = int(self.model_.best_iteration_ or self.model_.n_estimators)
        self.calibrator_ = None
        if valid is not None and valid["churned"].nunique() == 2:
            raw = self._raw(valid).reshape(-1, 1)
            self.calibrator_ = LogisticRegression(C=1e6).fit(raw, valid["churned"].to_numpy())
        return self

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(frame[self.features_], raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of no purchase in the horizon, one per row."""
        raw = self._raw(frame)
        if self.calibrator_ is None:
            return 1.0 / (1.0 + np.exp(-raw))
        return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-customer feature contributions to the churn log-odds (LightGBM ``pred_contrib``)."""
        values = self.model_.predict(frame[self.features_], pred_contrib=True)
        return pd.DataFrame(values[:, :-1], index=frame.index, columns=self.features_)

    def importance(self) -> pd.Series:
        gain = self.model_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)


class PurchaseModel:
    """LightGBM Poisson regression of the purchase count in the horizon (corrects BG/NBD's forecast)."""

    def __init__(self, *, settings: BoostSettings = BoostSettings()):
        self.settings = settings

    def fit(self, stacked: pd.DataFrame) -> "PurchaseModel":
        self.features_ = feature_columns(stacked)
        model = lgb.LGBMRegressor(objective="poisson", **self.settings.estimator_args())
        self.model_, _ = _fit_boosted(model, stacked, "purchases", self.features_, self.settings)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected number of purchase days in the horizon, one per row."""
        return self.model_.predict(frame[self.features_])


def fit_rfm_logistic(stacked: pd.DataFrame):
    """Baseline: logistic regression of ``churned`` on log RFM, on the same stacked cutoffs."""
    model = make_pipeline(
        FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression(max_iter=1000)
    )
    return model.fit(stacked[list(RFM)].clip(lower=0), stacked["churned"])


def top_drivers(contributions: pd.DataFrame, values: pd.DataFrame, *, k: int = 3) -> pd.Series:
    """The ``k`` features pushing each customer's churn risk up the most, as lists of dicts."""
    contrib = contributions.to_numpy()
    order = np.argsort(-contrib, axis=1)[:, :k]
    names = np.asarray(contributions.columns)
    vals = values[contributions.columns].to_numpy()
    rows = np.arange(len(contrib))[:, None]
    return pd.Series(
        [
            [{"feature": f, "value": float(v), "contribution": round(float(c), 4)} for f, v, c in zip(fs, vs, cs)]
            for fs, vs, cs in zip(names[order], vals[rows, order], contrib[rows, order])
        ],
        index=contributions.index,
        name="drivers",
    )
