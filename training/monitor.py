"""The live outcome check: past score tables against what the customers did afterwards.

A score table written by ``churnclv score`` keeps its as-of day, model version and horizon
(:mod:`scoring.scores`). Once its horizon has passed (as-of day + horizon ≤ the last day of the log, or the
day given), :func:`check` compares it with what happened in that horizon (:func:`features.make_labels`), with
the metric functions of the backtest (:mod:`training.backtest`, one definition): churn AUC, calibration,
top-decile lift; total purchases and spend, predicted against realised (and the share of customers whose
realised purchases fell in their interval, where the table has ``expected_purchases_low``/``_high``); per
segment. Beside them: the backtest figures recorded when that model version was trained.

The verdict, by stated thresholds (:data:`THRESHOLDS`, :func:`verdict`):

- **broken**: churn AUC below 0.55 (near guessing), or more than 0.08 below the backtest's;
- **degrading**: churn AUC more than 0.03 below the backtest's, or the total purchases missed by more than
  15 percentage points beyond the backtest's own miss (|error| − |backtest error| > 15);
- **holding**: neither.

Nothing here reads the clock: the day the check is made as of is an argument. :func:`log_check` records a
check as an MLflow run of the experiment ``churn-clv/monitor`` (metrics stamped with the scores' as-of day).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from mlflow.entities import Metric

from churnclv.contract.dates import iso
from churnclv.contract.errors import ChurnclvError
from churnclv.features import make_labels
from churnclv.training.backtest import churn_metrics, forecast_metrics, interval_coverage
from churnclv.training.registry import experiment_id, process_tags, shipped

VERDICTS = ("holding", "degrading", "broken")
#: The MLflow experiment of the checks: "churn-clv/" + this.
EXPERIMENT = "monitor"
#: The backtest figures set beside each check (``model.<name>`` in the training run).
BACKTEST_FIGURES = ("roc_auc", "lift_top_decile", "calibration_error", "purchases_total_error_pct",
                    "spend_total_error_pct")


@dataclass(frozen=True)
class Thresholds:
    """The verdict's stated lines (see the module)."""

    auc_degrading: float = 0.03  # AUC drop below the backtest's that is degrading
    auc_broken: float = 0.08  # AUC drop that is broken
    auc_floor: float = 0.55  # AUC below this is broken, whatever the backtest said
    purchases_points: float = 15.0  # |total purchases error| beyond the backtest's, percentage points: degrading


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class PastScores:
    """A score table written earlier, with its metadata (:func:`scoring.scores.read_score_metadata`)."""

    path: str
    as_of: pd.Timestamp
    model_version: str
    horizon_days: int
    table: pd.DataFrame  # customer_id and the score columns


@dataclass(frozen=True)
class Check:
    """One past score table against its realised horizon."""

    scores_as_of: str
    model_version: str
    horizon_days: int
    through: str  # the day the check is as of (the log's last day, or given)
    path: str
    figures: dict
    backtest: dict
    segments: dict = field(default_factory=dict)
    verdict: str = "holding"
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}


def due(past: list[PastScores], *, through) -> list[PastScores]:
    """The tables whose whole horizon lies on or before ``through``, one per (as-of day, model version), oldest
    first (two copies of one table, e.g. ``latest.parquet`` and its dated copy, count once)."""
    end = pd.Timestamp(through)
    kept: dict[tuple, PastScores] = {}
    for p in past:
        if p.as_of + pd.Timedelta(days=p.horizon_days) <= end:
            kept.setdefault((p.as_of, p.model_version), p)
    return [kept[k] for k in sorted(kept)]


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def outcome_figures(joined: pd.DataFrame) -> dict[str, float]:
    """The figures of one check on ``joined``: the scores beside ``churned``, ``purchases``, ``spend`` realised."""
    y = joined["churned"].to_numpy(dtype=float)
    p = joined["churn_probability"].to_numpy(dtype=float)
    figures = {
        "customers": float(len(joined)),
        "churn_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_churn_probability": float(p.mean()) if len(p) else float("nan"),
        **churn_metrics(y, p),
        **forecast_metrics(joined["expected_purchases"], joined["purchases"], name="purchases"),
        **forecast_metrics(joined["expected_spend"], joined["spend"], name="spend"),
        "purchases_predicted": float(joined["expected_purchases"].sum()),
        "purchases_actual": float(joined["purchases"].sum()),
        "spend_predicted": float(joined["expected_spend"].sum()),
        "spend_actual": float(joined["spend"].sum()),
    }
    if {"expected_purchases_low", "expected_purchases_high"} <= set(joined.columns):
        figures["purchases_interval_coverage"] = interval_coverage(
            joined["purchases"], joined["expected_purchases_low"], joined["expected_purchases_high"])
    return figures


def segment_figures(joined: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per segment: customers, mean predicted churn against the realised churn rate, purchases and spend
    predicted against realised."""
    if "segment" not in joined.columns:
        return {}
    grouped = joined.groupby("segment", observed=True)
    frame = pd.DataFrame({
        "customers": grouped.size().astype(float),
        "mean_churn_probability": grouped["churn_probability"].mean(),
        "churn_rate": grouped["churned"].mean().astype(float),
        "purchases_predicted": grouped["expected_purchases"].sum(),
        "purchases_actual": grouped["purchases"].sum().astype(float),
        "spend_predicted": grouped["expected_spend"].sum(),
        "spend_actual": grouped["spend"].sum(),
    })
    return {str(name): {k: float(v) for k, v in row.items()} for name, row in frame.iterrows()}


def verdict(figures: dict, backtest: dict, thresholds: Thresholds = THRESHOLDS) -> tuple[str, tuple[str, ...]]:
    """"holding", "degrading" or "broken" by :class:`Thresholds`, with the reasons in words."""
    auc, before = figures.get("roc_auc"), backtest.get("roc_auc")
    broken, degrading = [], []
    if auc is not None and math.isfinite(auc):
        if auc < thresholds.auc_floor:
            broken.append(f"churn AUC {auc:.3f} is below {thresholds.auc_floor:g} (near guessing)")
        if before is not None and math.isfinite(before):
            drop = before - auc
            said = f"churn AUC {auc:.3f} against {before:.3f} in the backtest (a drop of {drop:.3f}"
            if drop > thresholds.auc_broken:
                broken.append(f"{said} > {thresholds.auc_broken:g})")
            elif drop > thresholds.auc_degrading:
                degrading.append(f"{said} > {thresholds.auc_degrading:g})")
    error, before_error = figures.get("purchases_total_error_pct"), backtest.get("purchases_total_error_pct")
    if error is not None and math.isfinite(error):
        allowed = abs(before_error) if before_error is not None and math.isfinite(before_error) else 0.0
        if abs(error) - allowed > thresholds.purchases_points:
            degrading.append(f"total purchases missed by {error:+.1f}% against {allowed:.1f}% in the backtest "
                             f"(more than {thresholds.purchases_points:g} points worse)")
    if broken:
        return "broken", tuple(broken + degrading)
    return ("degrading", tuple(degrading)) if degrading else ("holding", ())


def interval_figures(population: dict | None, figures: dict) -> dict[str, float]:
    """The realised totals against the population's interval at the table's as-of day
    (:func:`scoring.intervals.population_forecast`: ``purchases_low``/``_high``, ``spend_low``/``_high``, ``level``):
    the ends and whether each total fell inside (1) or not (0); {} without an interval."""
    if not population:
        return {}
    out = {"interval_level": float(population["level"])}
    for total in ("purchases", "spend"):
        low, high = float(population[f"{total}_low"]), float(population[f"{total}_high"])
        out |= {f"{total}_low": low, f"{total}_high": high,
                f"{total}_in_interval": float(low <= figures[f"{total}_actual"] <= high)}
    return out


def check(past: PastScores, transactions: pd.DataFrame, *, through, backtest: dict, population: dict | None = None,
          thresholds: Thresholds = THRESHOLDS) -> Check:
    """One past score table against the horizon after its as-of day in ``transactions`` (the customers of
    the table that the log still holds; an erased customer drops out of both). ``population``: the totals'
    interval at the table's as-of day (:func:`interval_figures`), where the model gives one."""
    outcome = make_labels(transactions, as_of=past.as_of, horizon_days=past.horizon_days)
    joined = past.table.set_index("customer_id").join(outcome, how="inner")
    if joined.empty:
        examples = ", ".join(map(str, past.table["customer_id"].head(3)))
        raise ChurnclvError(f"{past.path}: none of its {len(past.table):,} customers (e.g. {examples}) bought on or "
                            f"before {iso(past.as_of)} in the transactions given: is it the same log?")
    figures = outcome_figures(joined)
    figures |= interval_figures(population, figures)
    word, reasons = verdict(figures, backtest, thresholds)
    return Check(scores_as_of=iso(past.as_of), model_version=past.model_version, horizon_days=past.horizon_days,
                 through=iso(through), path=past.path, figures=figures, backtest=dict(backtest),
                 segments=segment_figures(joined), verdict=word, reasons=reasons)


def latest(checks: list[Check]) -> Check | None:
    """The check of the most recent scores (the latest verdict); None without checks."""
    return max(checks, key=lambda c: (c.scores_as_of, _number(c.model_version)), default=None)


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return -1.0


def backtest_figures(run_metrics: dict[str, float]) -> dict[str, float]:
    """The backtest figures of a training run's flat metrics (``model.<name>``), those recorded."""
    found = {name: shipped(run_metrics, name, float("nan")) for name in BACKTEST_FIGURES}
    return {k: float(v) for k, v in found.items() if math.isfinite(v)}


def summary(found: Check) -> dict:
    """What ``GET /model``, the page and ``/metrics`` show of the latest check (plain JSON data)."""
    f, b = found.figures, found.backtest
    return {
        "verdict": found.verdict, "reasons": list(found.reasons), "scores_as_of": found.scores_as_of,
        "model_version": found.model_version, "through": found.through, "horizon_days": found.horizon_days,
        "customers": int(f.get("customers", 0)),
        "roc_auc": _finite(f.get("roc_auc")), "backtest_roc_auc": _finite(b.get("roc_auc")),
        "lift_top_decile": _finite(f.get("lift_top_decile")), "backtest_lift_top_decile": _finite(b.get("lift_top_decile")),
        "calibration_error": _finite(f.get("calibration_error")),
        "purchases_total_error_pct": _finite(f.get("purchases_total_error_pct")),
        "spend_total_error_pct": _finite(f.get("spend_total_error_pct")),
        **{k: _finite(f.get(k)) for k in ("purchases_actual", "purchases_low", "purchases_high", "spend_actual",
                                          "spend_low", "spend_high", "interval_level") if k in f},
        "rule": rule_text(),
    }


def rule_text(thresholds: Thresholds = THRESHOLDS) -> str:
    """The verdict's rule in one sentence (shown beside it)."""
    t = thresholds
    return (f"broken: churn AUC below {t.auc_floor:g} or more than {t.auc_broken:g} below the backtest's; degrading: "
            f"more than {t.auc_degrading:g} below it, or total purchases missed by more than {t.purchases_points:g} "
            "points beyond the backtest's miss; holding otherwise")


def run_metrics(found: Check) -> dict[str, float]:
    """A check's figures as flat MLflow metrics: the figures, ``backtest.<name>``, ``segment.<name>.<figure>``
    and ``verdict`` (0 holding, 1 degrading, 2 broken); finite values only."""
    flat = {**found.figures, **{f"backtest.{k}": v for k, v in found.backtest.items()},
            **{f"segment.{s}.{k}": v for s, row in found.segments.items() for k, v in row.items()},
            "verdict": float(VERDICTS.index(found.verdict))}
    return {k: float(v) for k, v in flat.items() if v is not None and np.isfinite(v)}


def _tags(found: Check) -> dict[str, str]:
    return {"monitor.scores_as_of": found.scores_as_of, "monitor.model_version": found.model_version,
            "monitor.through": found.through}


def logged_before(client, experiment: str, found: Check) -> str | None:
    """The run id of an earlier identical check (same scores, model and day), or None."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in _tags(found).items())
    runs = client.search_runs([experiment], filter_string=query, max_results=1)
    return runs[0].info.run_id if runs else None


def log_check(client, found: Check, *, artifact_root) -> tuple[str, bool]:
    """Record ``found`` as a finished MLflow run of ``churn-clv/monitor`` (metrics stamped with the scores' as-of
    day, so that MLflow draws them over time; the whole check as ``check.json``). An identical check logged
    before is not logged again. Returns (run id, whether it is new)."""
    experiment = experiment_id(client, EXPERIMENT, artifact_root)
    earlier = logged_before(client, experiment, found)
    if earlier is not None:
        return earlier, False
    run = client.create_run(experiment, run_name=f"check of the scores as of {found.scores_as_of} "
                                                 f"(v{found.model_version}) through {found.through}",
                            tags={**_tags(found), "monitor.verdict": found.verdict, **process_tags()})
    stamp = int(pd.Timestamp(found.scores_as_of).timestamp() * 1000)
    metrics = [Metric(k, v, stamp, 0) for k, v in run_metrics(found).items()]
    for start in range(0, len(metrics), 500):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run.info.run_id, metrics=metrics[start:start + 500])
    client.log_dict(run.info.run_id, found.to_dict(), "check.json")
    client.set_terminated(run.info.run_id)
    return run.info.run_id, True


def retrain_reasons(newest: Check | None, drift: dict | None) -> list[str]:
    """Why a retraining is needed: the latest check is not holding, or the served scores drifted (its warning
    line); [] when neither says so (``churnclv retrain --if-needed`` then trains nothing)."""
    reasons = []
    if newest is not None and newest.verdict != "holding":
        reasons.append(f"the monitor says {newest.verdict} on the scores as of {newest.scores_as_of} "
                       f"(v{newest.model_version}): " + "; ".join(newest.reasons))
    if drift and drift.get("warning"):
        reasons.append(str(drift["warning"]))
    return reasons


def no_retrain_reason(newest: Check | None, drift: dict | None) -> str:
    """Why ``--if-needed`` trained nothing, in one line."""
    said = (f"the monitor says holding on the scores as of {newest.scores_as_of} (v{newest.model_version})"
            if newest is not None else "no past score table has a horizon that ended yet (nothing to check)")
    moved = (f"no drift in the served scores (largest PSI {drift['psi_max']:.2f} ≤ {drift['threshold']:g})"
             if drift else "the served score table has no drift report")
    return f"{said}; {moved}"
