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


def time_split(stacked: pd.DataFrame, *, horizon_days: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Validate on the latest cutoff; train on the cutoffs whose label windows end by then.

    Snapshots of one customer at nearby cutoffs share most of their future, so a training cutoff whose
    label window overlaps the validation window would leak the answer. Never a random split.
    """
    latest = stacked["cutoff"].max()
    train = stacked.loc[stacked["cutoff"] + pd.Timedelta(days=horizon_days) <= latest]
    if train.empty:
        return stacked, None
    return train, stacked.loc[stacked["cutoff"] == latest]


@dataclass(frozen=True)
class BoostSettings:
    """LightGBM settings shared by the churn classifier and the purchase-count regressor."""

    n_estimators: int = 1000
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    early_stopping_rounds: int = 50
    fixed_rounds: int = 200
    seed: int = 42

    def estimator_args(self, n_estimators: int) -> dict:
        return dict(
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1,
            colsample_bytree=self.colsample_bytree,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=1,  # two threads on two busy cores thrash (measured 2-4x slower); one is predictable
            verbose=-1,
        )


def _fit_boosted(make, stacked: pd.DataFrame, target: str, columns: list[str], settings: BoostSettings,
                 horizon_days: int):
    """Pick the number of rounds by early stopping on a later, non-overlapping cutoff, then refit on all cutoffs.

    Returns the refitted estimator and, when there was a validation cutoff, the held-out model's raw
    scores on it with the outcomes (to calibrate on data the model never saw).
    """
    train, valid = time_split(stacked, horizon_days=horizon_days)
    if valid is None:
        return make(settings.fixed_rounds).fit(stacked[columns], stacked[target]), None
    held_out = make(settings.n_estimators).fit(
        train[columns], train[target], eval_X=(valid[columns],), eval_y=(valid[target],),
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    rounds = int(held_out.best_iteration_ or settings.n_estimators)
    raw = held_out.predict(valid[columns], raw_score=True)
    return make(rounds).fit(stacked[columns], stacked[target]), (raw, valid[target].to_numpy())


class ChurnModel:
    """LightGBM classifier of ``churned``, Platt-calibrated on a later cutoff than it was trained on.

    Parameters
    ----------
    settings : LightGBM settings (seeded, deterministic).
    """

    def __init__(self, *, settings: BoostSettings = BoostSettings()):
        self.settings = settings

    def fit(self, stacked: pd.DataFrame, *, horizon_days: int) -> ChurnModel:
        self.features_ = feature_columns(stacked)
        make = lambda n: lgb.LGBMClassifier(objective="binary", **self.settings.estimator_args(n))
        self.model_, held_out = _fit_boosted(make, stacked, "churned", self.features_, self.settings, horizon_days)
        self.calibrator_ = None
        if held_out is not None and len(np.unique(held_out[1])) == 2:
            self.calibrator_ = LogisticRegression(C=1e6).fit(held_out[0].reshape(-1, 1), held_out[1])
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

    def fit(self, stacked: pd.DataFrame, *, horizon_days: int) -> PurchaseModel:
        self.features_ = feature_columns(stacked)
        make = lambda n: lgb.LGBMRegressor(objective="poisson", **self.settings.estimator_args(n))
        self.model_, _ = _fit_boosted(make, stacked, "purchases", self.features_, self.settings, horizon_days)
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
