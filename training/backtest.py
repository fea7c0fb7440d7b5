"""Metrics on the held-out window: churn ranking and calibration, purchase and spend forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, mean_poisson_deviance, roc_auc_score


def reliability(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean predicted probability, observed rate and size of each equal-count (quantile) bin of ``y_prob``.

    Customers are ranked by prediction and cut into ``n_bins`` groups of (nearly) equal size;
    empty groups (fewer customers than bins) are dropped.
    """
    order = np.argsort(y_prob, kind="stable")
    bins = np.empty(len(y_prob), dtype=np.intp)
    bins[order] = np.arange(len(y_prob)) * n_bins // len(y_prob)
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    mean_pred = np.bincount(bins, weights=y_prob, minlength=n_bins)[keep] / count[keep]
    observed = np.bincount(bins, weights=y_true, minlength=n_bins)[keep] / count[keep]
    return mean_pred, observed, count[keep]


def calibration_error(y_true: np.ndarray, y_prob: np.ndarray, *, n_bins: int = 10) -> float:
    """Expected calibration error: mean |observed − predicted| over the :func:`reliability` bins, weighted by size."""
    mean_pred, observed, count = reliability(np.asarray(y_true, float), np.asarray(y_prob, float), n_bins)
    return float(np.sum(np.abs(observed - mean_pred) * count) / count.sum())


def gain_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative gain: share of churners captured vs share of customers contacted.

    Customers are contacted highest score first. Tied scores are contacted together, so the curve
    has a vertex only at the end of each tie group (a constant score gives the diagonal). The
    curve starts at (0, 0) and ends at (1, 1).
    """
    order = np.argsort(-score, kind="stable")
    s, captured = score[order], np.cumsum(y_true[order])
    group_end = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    x = np.concatenate([[0.0], (group_end + 1) / len(score)])
    y = np.concatenate([[0.0], captured[group_end] / captured[-1]])
    return x, y


def decile_lift(gain_x: np.ndarray, gain_y: np.ndarray, n_groups: int = 10) -> np.ndarray:
    """Lift of each score decile (1 = highest scores): its churn rate divided by the overall rate.

    Read off the (tie-aware) gain curve: lift_d = (G(d/10) - G((d-1)/10)) / (1/10).
    """
    captured = np.interp(np.linspace(0.0, 1.0, n_groups + 1), gain_x, gain_y)
    return np.diff(captured) * n_groups


def top_decile_lift(y_true: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the 10% highest scores divided by the overall churn rate; customers with tied scores
    count together (:func:`gain_curve`), so the order of ids never moves it."""
    y, s = np.asarray(y_true, dtype=float), np.asarray(score, dtype=float)
    return float(decile_lift(*gain_curve(y, s))[0]) if y.sum() > 0 else float("nan")


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of a churn score, NaN when the outcomes are all one class or the score is not finite."""
    y, s = np.asarray(y_true, dtype=float), np.asarray(score, dtype=float)
    if len(np.unique(y)) < 2 or not np.isfinite(s).all():
        return float("nan")
    return float(roc_auc_score(y, s))


def auc_difference(y_true: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """AUC(a) − AUC(b) on the same outcomes and the standard error of that difference, by DeLong, DeLong &
    Clarke-Pearson (1988), in the O(n log n) form of Sun & Xu (2014): each positive's (churned, y = 1) share of
    negatives it outranks and each negative's share of positives that outrank it, per score; their covariances
    across the two scores give the variance of the paired difference. NaN without both outcomes."""
    y = np.asarray(y_true, dtype=float) == 1
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    v10, v01 = [], []
    for score in (np.asarray(a, dtype=float), np.asarray(b, dtype=float)):
        pos, neg, both = rankdata(score[y]), rankdata(score[~y]), rankdata(np.concatenate([score[y], score[~y]]))
        v10.append((both[:m] - pos) / n)  # per positive: negatives below it (ties count half)
        v01.append(1.0 - (both[m:] - neg) / m)  # per negative: positives above it
    diff = float(v10[0].mean() - v10[1].mean())
    variance = np.var(v10[0] - v10[1], ddof=1) / m if m > 1 else 0.0
    variance += np.var(v01[0] - v01[1], ddof=1) / n if n > 1 else 0.0
    return diff, float(np.sqrt(variance))


def churn_metrics(y_true: np.ndarray, score: np.ndarray, *, probabilities: bool = True) -> dict[str, float]:
    """ROC AUC, PR AUC and top-decile lift of a churn score; Brier and calibration error if it is a probability."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    # a window where every customer had the same outcome ranks nothing: NaN, as for a score that is not finite
    both = len(np.unique(y)) == 2 and bool(np.isfinite(s).all())
    out = {
        "roc_auc": roc_auc(y, s),
        "pr_auc": float(average_precision_score(y, s)) if both else float("nan"),
        "lift_top_decile": top_decile_lift(y, s) if both else float("nan"),
    }
    if probabilities:
        out["brier"] = float(brier_score_loss(y, s))
        out["calibration_error"] = calibration_error(y, s)
    return out


def pct_error(predicted: float, actual: float) -> float:
    return float(100.0 * (predicted - actual) / actual) if actual else float("nan")


def forecast_metrics(predicted: pd.Series, actual: pd.Series, *, name: str) -> dict[str, float]:
    """Total % error, per-customer MAE and Spearman rank correlation of a per-customer forecast."""
    p = predicted.to_numpy(dtype=float)
    a = actual.reindex(predicted.index).to_numpy(dtype=float)
    constant = np.ptp(p) == 0 or np.ptp(a) == 0
    return {
        f"{name}_total_error_pct": pct_error(p.sum(), a.sum()),
        f"{name}_mae": float(np.mean(np.abs(p - a))),
        f"{name}_spearman": float("nan") if constant else float(spearmanr(p, a).statistic),
    }


def interval_coverage(actual: pd.Series, low: pd.Series, high: pd.Series) -> float:
    """The share of customers whose realised value fell inside their own interval, ends included."""
    return float(actual.between(low.reindex(actual.index), high.reindex(actual.index)).mean())


def purchase_metrics(predicted: pd.Series, actual: pd.Series) -> dict[str, float]:
    """:func:`forecast_metrics` of purchase counts plus the mean Poisson deviance (a proper score for
    expected counts, used to choose the forecast: MAE would reward forecasting zero for everyone)."""
    a = actual.reindex(predicted.index).to_numpy(dtype=float)
    deviance = mean_poisson_deviance(a, np.clip(predicted.to_numpy(dtype=float), 1e-9, None))
    return {**forecast_metrics(predicted, actual, name="purchases"), "purchases_poisson_deviance": float(deviance)}

