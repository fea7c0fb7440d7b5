"""The training job the CLI runs: train, draw the report, log and register in MLflow, gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from churnclv.contract import write_atomic
from churnclv.contract.dates import as_of_day, iso
from churnclv.training import plots
from churnclv.training.choice import can_judge
from churnclv.training.pipeline import (
    Log,
    Progress,
    TrainConfig,
    TrainResult,
    as_log,
    refitted,
    train,
    window_metrics,
)
from churnclv.training.registry import Logged, gate, log_training, trained_by


@dataclass
class Outcome:
    result: TrainResult
    logged: Logged
    promoted: bool
    reason: str
    plots_dir: Path


def report_figures(result: TrainResult) -> dict:
    """The backtest plots: calibration, lift/gain, importance, purchases by frequency, P(alive)."""
    bt = result.backtest
    y = bt["actual_churned"].to_numpy(dtype=float)
    scores = {"churnclv": bt["churn_probability"].to_numpy(), "BG/NBD": bt["bgnbd_p_no_purchase"].to_numpy(),
              "RFM logistic": bt["rfm_logistic"].to_numpy()}
    scores = {name: s for name, s in scores.items() if np.isfinite(s).all()}  # no RFM logistic without snapshots
    churn = result.bundle.models.churn
    importance = {"feature_importance": plots.feature_importance(churn.importance())} if churn is not None else {}
    return {
        "calibration": plots.calibration_curve(y, scores["churnclv"], baselines={"BG/NBD": scores["BG/NBD"]}),
        "lift_gain": plots.lift_gain_chart(y, scores),
        **importance,
        "purchases_by_frequency": plots.purchases_by_frequency(
            bt["frequency"].to_numpy(), bt["expected_purchases"].to_numpy(), bt["actual_purchases"].to_numpy()
        ),
        "p_alive": plots.p_alive_matrix(bt["frequency"].to_numpy(), bt["recency"].to_numpy(), bt["p_alive"].to_numpy()),
    }


def save_figures(figures: dict, folder: Path) -> None:
    for name, figure in figures.items():
        write_atomic(folder / f"{name}.png", lambda tmp, f=figure: f.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def example_input(*, as_of: pd.Timestamp) -> pd.DataFrame:
    """A made-up customer's three purchases before ``as_of``: the logged input example (no real data)."""
    days = pd.to_timedelta([200, 120, 30], unit="D")
    return pd.DataFrame({"customer_id": "example-customer", "timestamp": as_of - days, "amount": [25.0, 40.0, 32.5]})


def run_training(transactions: pd.DataFrame | Log, *, as_of: date | pd.Timestamp, config: TrainConfig, dataset: str, client,
                 artifact_root: Path | None, plots_dir: Path, progress: Progress | None = None,
                 events: pd.DataFrame | None = None) -> Outcome:
    """Train at the as-of day, save the report's plots, log and register the model, and gate the champion.

    Registering and gating hold the store's lock (:func:`scoring.registry.store_lock`): two trainings
    that end together register one after the other, and each gate sees the other's champion.
    """
    as_of = pd.Timestamp(as_of_day(as_of))
    result = train(transactions, as_of=as_of, config=config, progress=progress, events=events)
    figures = report_figures(result)
    save_figures(figures, plots_dir)
    logged = log_training(result, dataset=dataset, params=config.flat(), figures=figures, client=client,
                          artifact_root=artifact_root, input_example=example_input(as_of=as_of))
    origin = pd.Timestamp(result.bundle.metadata["backtest_origin"])
    seen = as_log(transactions, events).until(as_of)
    promoted, reason = gate(client, logged, rescore=lambda champion: window_metrics(
        champion, seen, origin=origin, horizon_days=config.horizon_days),
        latest=on_latest_window(result, seen, as_of=as_of, config=config))
    return Outcome(result=result, logged=logged, promoted=promoted, reason=reason, plots_dir=plots_dir)


def on_latest_window(result: TrainResult, seen: Log, *, as_of: pd.Timestamp, config: TrainConfig):
    """For the champion gate, when the challenger's backtest window lies before the champion's as-of day (the
    same season a year earlier): both measured on the latest window, ``(as_of − horizon, as_of]``, if the
    champion had not seen it and it can judge, the challenger refitted at its start (:func:`refitted`)."""
    origin = as_of - pd.Timedelta(days=config.horizon_days)

    def measure(champion, champion_as_of: str | None):
        if not trained_by(champion_as_of, iso(origin)) or can_judge(seen.labels(as_of=origin,
                                                                              horizon_days=config.horizon_days)):
            return None
        challenger = refitted(result.bundle, seen, as_of=origin, config=config)
        window = f"{iso(origin)} + {config.horizon_days} days"
        return (window_metrics(challenger, seen, origin=origin, horizon_days=config.horizon_days),
                window_metrics(champion, seen, origin=origin, horizon_days=config.horizon_days), window)

    return measure
