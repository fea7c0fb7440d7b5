"""The trust commands: ``monitor`` (past score tables against what happened) and ``retrain`` (a challenger
for the champion gate, ``--if-needed`` only when the monitor or drift says so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from churnclv.context import closes_resources, command_settings, console, mlflow_client
from churnclv.contract.defaults import CUTOFF_STEP_DAYS, STACKED_CUTOFFS
from churnclv.contract.errors import ChurnclvError
from churnclv.contract.settings import Settings
from churnclv.options import (
    AMOUNT_COL,
    BAD_ROWS,
    CUSTOMER_COL,
    TIMESTAMP_COL,
    AmountCol,
    AsOf,
    BadRows,
    CustomerCol,
    Cutoffs,
    DateFormat,
    Rejected,
    StepDays,
    TimestampCol,
    Transactions,
)
from churnclv.quiet import uses_mlflow
from churnclv.source import Source

#: Columns of a past score table the check reads.
READ_COLUMNS = ("customer_id", "churn_probability", "expected_purchases", "expected_spend", "segment",
                "expected_purchases_low", "expected_purchases_high")


def monitor_file(settings: Settings) -> Path:
    """Where the latest verdict is written: beside the served score table (the service reads it there)."""
    from churnclv.scoring.scores import MONITOR_FILE

    return settings.scores_path.parent / MONITOR_FILE


def past_tables(settings: Settings) -> list:
    """Every Parquet score table under ``$CHURNCLV_HOME/scores/`` (and the served one) that keeps its as-of day,
    model version and horizon (:func:`scoring.scores.read_score_metadata`)."""
    import pyarrow.parquet as pq

    from churnclv.scoring.scores import is_parquet, read_score_metadata
    from churnclv.training.monitor import PastScores

    folder = settings.root / "scores"
    paths = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    found = []
    for path in dict.fromkeys([*paths, settings.scores_path]):
        if not (path.is_file() and is_parquet(path)):
            continue
        meta = read_score_metadata(path)
        if not (meta.get("as_of") and meta.get("model_version") and str(meta.get("horizon_days", "")).isdigit()):
            continue
        columns = [c for c in READ_COLUMNS if c in pq.read_schema(path).names]
        found.append(PastScores(path=str(path), as_of=pd.Timestamp(meta["as_of"]), model_version=meta["model_version"],
                                horizon_days=int(meta["horizon_days"]), table=pd.read_parquet(path, columns=columns)))
    return found


def recorded_backtest(client, version: str) -> dict:
    """The backtest figures of the training run of ``churn-clv`` v``version``; {} when the registry no longer
    holds it."""
    from mlflow.exceptions import MlflowException

    from churnclv.contract.defaults import MODEL_NAME
    from churnclv.training.monitor import backtest_figures

    try:
        run_id = client.get_model_version(MODEL_NAME, version).run_id
        return backtest_figures(client.get_run(run_id).data.metrics)
    except MlflowException:
        return {}


def population_at(client, version: str, tx: pd.DataFrame, as_of: pd.Timestamp, bundles: dict) -> dict | None:
    """The total purchases and spend with their interval that model v``version`` gives at ``as_of`` for the customers
    of the log then (:func:`scoring.intervals.population_forecast`); None when the model or its draws are gone.
    ``bundles``: the bundles loaded so far, by version (each is loaded once per command)."""
    from churnclv.contract import ChurnclvError
    from churnclv.contract.defaults import MODEL_NAME
    from churnclv.contract.model_uri import version_uri
    from churnclv.scoring.intervals import population_forecast
    from churnclv.scoring.registry import load_bundle

    try:
        bundle = bundles.get(version) or bundles.setdefault(version, load_bundle(client, version_uri(MODEL_NAME, version)))
        return population_forecast(bundle.models, bundle.snapshot(tx, as_of=as_of)).to_dict()
    except (ChurnclvError, KeyError, ValueError, TypeError, AttributeError):  # a version without stored draws
        return None


def run_checks(tx: pd.DataFrame, *, through, settings: Settings, client) -> list:
    """Check every past table whose horizon has passed by ``through``, log each check in MLflow, and write the
    latest verdict beside the served score table; the checks, oldest first."""
    from churnclv.contract import write_atomic
    from churnclv.training.monitor import check, due, latest, log_check, summary

    backtests: dict[str, dict] = {}
    bundles: dict[str, object] = {}
    checks = []
    for past in due(past_tables(settings), through=through):
        if past.model_version not in backtests:
            backtests[past.model_version] = recorded_backtest(client, past.model_version)
        try:
            found = check(past, tx, through=through, backtest=backtests[past.model_version],
                          population=population_at(client, past.model_version, tx, past.as_of, bundles))
        except ChurnclvError as exc:  # a table of another log: say so, check the others
            console.print(f"[yellow]skipped:[/] {exc}", highlight=False, soft_wrap=True)
            continue
        run_id, _ = log_check(client, found, artifact_root=settings.artifact_root)
        checks.append((found, run_id))
    newest = latest([c for c, _ in checks])
    if newest is not None:
        run_id = {id(c): r for c, r in checks}[id(newest)]
        text = json.dumps({**summary(newest), "run_id": run_id, "checks": len(checks)}, indent=2)
        write_atomic(monitor_file(settings), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return [c for c, _ in checks]


def _num(value, spec: str) -> str:
    return "–" if value is None or value != value else format(value, spec)


def checks_table(checks: list):
    """One row per check: the churn ranking and calibration on what happened, beside the backtest's."""
    from rich.table import Table

    table = Table(title="Past scores against what happened: churn (backtest in brackets)")
    for name in ("scores as of", "model", "customers", "churn AUC", "top-decile lift", "calibration error", "verdict"):
        table.add_column(name, justify="left" if name in ("scores as of", "model", "verdict") else "right",
                         no_wrap=name == "scores as of", min_width=10 if name == "scores as of" else None)
    for c in checks:
        f, b = c.figures, c.backtest
        table.add_row(c.scores_as_of, f"v{c.model_version}", f"{f['customers']:,.0f}",
                      f"{_num(f.get('roc_auc'), '.3f')} ({_num(b.get('roc_auc'), '.3f')})",
                      f"{_num(f.get('lift_top_decile'), '.2f')}× ({_num(b.get('lift_top_decile'), '.2f')}×)",
                      f"{_num(f.get('calibration_error'), '.3f')} ({_num(b.get('calibration_error'), '.3f')})",
                      c.verdict)
    return table


def totals_table(checks: list):
    """Per check, total purchases and spend over the horizon: forecast, its interval (where the model gives one)
    and what happened, and whether that fell inside."""
    from rich.table import Table

    table = Table(title="Past scores against what happened: totals over the horizon")
    for name in ("scores as of", "total", "forecast", "interval", "real", "inside"):
        table.add_column(name, justify="left" if name in ("scores as of", "total") else "right", no_wrap=True)
    for c in checks:
        f = c.figures
        for total in ("purchases", "spend"):
            has = f"{total}_low" in f
            table.add_row(c.scores_as_of if total == "purchases" else "", total, f"{f[f'{total}_predicted']:,.0f}",
                          f"{f[f'{total}_low']:,.0f}–{f[f'{total}_high']:,.0f}" if has else "–",
                          f"{f[f'{total}_actual']:,.0f} ({_num(f.get(f'{total}_total_error_pct'), '+.1f')}%)",
                          ("yes" if f[f"{total}_in_interval"] else "no") if has else "–")
    return table


def segments_table(found):
    """The latest check per segment: predicted churn against the realised rate, purchases forecast and real."""
    from rich.table import Table

    table = Table(title=f"Per segment, scores as of {found.scores_as_of}")
    for name in ("segment", "customers", "predicted churn", "real churn", "purchases: forecast / real"):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for name, s in found.segments.items():
        table.add_row(name, f"{s['customers']:,.0f}", f"{100 * s['mean_churn_probability']:.0f}%",
                      f"{100 * s['churn_rate']:.0f}%", f"{s['purchases_predicted']:,.0f} / {s['purchases_actual']:,.0f}")
    return table


def say_verdict(found) -> None:
    colour = {"holding": "green", "degrading": "yellow", "broken": "red"}[found.verdict]
    why = "; ".join(found.reasons) or "within the stated thresholds of its backtest"
    console.print(f"Latest verdict ([bold]scores as of {found.scores_as_of}, v{found.model_version}[/]): "
                  f"[{colour}]{found.verdict}[/]: {why}", highlight=False, soft_wrap=True)


@uses_mlflow
@closes_resources
def monitor(
    transactions: Transactions,
    as_of: AsOf = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Compare every past score table whose horizon has passed with what happened since: churn AUC, calibration,
    lift, purchases and spend, per segment, beside the model's backtest; log each check in MLflow
    (churn-clv/monitor) and say whether the model is holding, degrading or broken."""
    from churnclv.training.monitor import latest, rule_text

    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected)
    settings = command_settings()
    client = mlflow_client(settings)
    tx = source.load(settings)
    day = source.day(tx)
    checks = run_checks(tx, through=day, settings=settings, client=client)
    if not checks:
        console.print(f"No past score table under {settings.root / 'scores'} has a horizon that ended by {day}: "
                      "nothing to check yet (churnclv score keeps a dated copy of each table it writes)",
                      highlight=False, soft_wrap=True)
        return
    console.print(checks_table(checks))
    console.print(totals_table(checks))
    covered = [f"{100 * c.figures['purchases_interval_coverage']:.0f}% ({c.scores_as_of})" for c in checks
               if "purchases_interval_coverage" in c.figures]
    if covered:
        console.print("Customers whose real purchases fell inside their own interval: " + ", ".join(covered),
                      highlight=False, soft_wrap=True)
    newest = latest(checks)
    console.print(segments_table(newest))
    say_verdict(newest)
    console.print(f"Rule: {rule_text()}. Logged in MLflow (churn-clv/monitor); the verdict is in "
                  f"{monitor_file(settings)}", highlight=False, soft_wrap=True)


def served_drift(settings: Settings) -> dict | None:
    """The drift report of the served score table (``CHURNCLV_SCORES_PATH``), None when it has none."""
    from churnclv.scoring.scores import read_score_metadata

    text = read_score_metadata(settings.scores_path).get("drift") if settings.scores_path.is_file() else None
    return json.loads(text) if text else None


def champion_horizon(client) -> int | None:
    """The horizon (days) the champion was trained for, None without a champion."""
    from churnclv.training.registry import champion

    current = champion(client)
    value = client.get_run(current.run_id).data.params.get("horizon_days") if current is not None else None
    return int(value) if value and value.isdigit() else None


@uses_mlflow
@closes_resources
def retrain(
    transactions: Transactions,
    as_of: AsOf = None,
    if_needed: Annotated[bool, typer.Option("--if-needed", help="Train only when the monitor says degrading or "
                                            "broken, or the served scores drifted; say why either way.")] = False,
    horizon_days: Annotated[int | None, typer.Option(min=1, help="Churn horizon in days. Default: the champion's.")] = None,
    cutoffs: Cutoffs = STACKED_CUTOFFS,
    step_days: StepDays = CUTOFF_STEP_DAYS,
    dataset: Annotated[str | None, typer.Option(help="MLflow experiment suffix. Default: the file name, or cdnow.")] = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Train a challenger on the latest data and let the champion gate decide (as train does); with --if-needed,
    only when the monitor or the drift of the served scores says so."""
    from churnclv.contract.defaults import HORIZON_DAYS
    from churnclv.models import train
    from churnclv.training.monitor import latest, no_retrain_reason, retrain_reasons
    from churnclv.training.registry import champion

    settings = command_settings()
    client = mlflow_client(settings)
    if if_needed:
        source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected)
        tx = source.load(settings)
        newest, drift = latest(run_checks(tx, through=source.day(tx), settings=settings, client=client)), served_drift(settings)
        reasons = retrain_reasons(newest, drift) or (["no champion yet"] if champion(client) is None else [])
        if not reasons:
            console.print(f"Not retraining: {no_retrain_reason(newest, drift)}.", highlight=False, soft_wrap=True)
            return
        console.print("Retraining: " + " | ".join(reasons), highlight=False, soft_wrap=True)
    horizon = horizon_days or champion_horizon(client) or HORIZON_DAYS
    train(transactions, as_of=as_of, horizon_days=horizon, cutoffs=cutoffs, step_days=step_days, dataset=dataset,
          customer_col=customer_col, timestamp_col=timestamp_col, amount_col=amount_col, date_format=date_format,
          bad_rows=bad_rows, rejected=rejected)


def register(app: typer.Typer) -> None:
    """Add the trust commands to ``app``."""
    app.command()(monitor)
    app.command()(retrain)
