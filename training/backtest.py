"""Metrics on the held-out window: churn ranking and calibration, purchase and spend forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, mean_poisson_deviance, roc_auc_score


def calibration_error(y_true: np.ndarray, y_prob: np.ndarray, *, n_bins: int = 10) -> float:
    """Expected calibration error: mean |observed − predicted| over equal-count bins, weighted by size."""
    order = np.argsort(y_prob, kind="stable")
    bins = np.array_split(order, n_bins)
    gaps = [abs(y_true[b].mean() - y_prob[b].mean()) * len(b) for b in bins if len(b)]
    return float(np.sum(gaps) / len(y_prob))


def top_decile_lift(y_true: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the 10% highest scores divided by the overall churn rate."""
    n = max(1, int(round(len(score) * 0.1)))
    top = np.argsort(-score, kind="stable")[:n]
    base = y_true.mean()
    return float(y_true[top].mean() / base) if base > 0 else float("nan")


def churn_metrics(y_true: np.ndarray, score: np.ndarray, *, probabilities: bool = True) -> dict[str, float]:
    """ROC AUC, PR AUC and top-decile lift of a churn score; Brier and calibration error if it is a probability."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    out = {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "lift_top_decile": top_decile_lift(y, s),
    }
    if probabilities:
        out["brier"] = float(brier_score_loss(y, s))
        out["calibration_error"] = calibration_error(y, s)
    return out


def _pct_error(predicted: float, actual: float) -> float:
    return float(100.0 * (predicted - actual) / actual) if actual else float("nan")


def forecast_metrics(predicted: pd.Series, actual: pd.Series, *, name: str) -> dict[str, float]:
    """Total % error, per-customer MAE and Spearman rank correlation of a per-customer forecast."""
    p = predicted.to_numpy(dtype=float)
    a = actual.reindex(predicted.index).to_numpy(dtype=float)
    constant = np.ptp(p) == 0 or np.ptp(a) == 0
    return {
        f"{name}_total_error_pct": _pct_error(p.sum(), a.sum()),
        f"{name}_mae": float(np.mean(np.abs(p - a))),
        f"{name}_spearman": float("nan") if constant else float(spearmanr(p, a).statistic),
    }


def purchase_metrics(predicted: pd.Series, actual: pd.Series) -> dict[str, float]:
    """:func:`forecast_metrics` of purchase counts plus the mean Poisson deviance (a proper score for
    expected counts, used to choose the forecast: MAE would reward forecasting zero for everyone)."""
    a = actual.reindex(predicted.index).to_numpy(dtype=float)
    deviance = mean_poisson_deviance(a, np.clip(predicted.to_numpy(dtype=float), 1e-9, None))
    return {**forecast_metrics(predicted, actual, name="purchases"), "purchases_poisson_deviance": float(deviance)}

