"""The model commands: ``train``, ``backtest`` (in :mod:`churnclv.judge`), ``score`` and ``promote``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from churnclv.cluster import score_on_cluster
from churnclv.context import (
    StepLines,
    check_writable,
    closes_resources,
    command_settings,
    console,
    mlflow_client,
    progress_bar,
    step,
)
from churnclv.contract.dates import iso
from churnclv.contract.defaults import (
    CLV_HORIZON_DAYS,
    CUTOFF_STEP_DAYS,
    DISCOUNT_RATE,
    HORIZON_DAYS,
    MODEL_NAME,
    MODEL_URI,
    STACKED_CUTOFFS,
)
from churnclv.contract.errors import ChurnclvError
from churnclv.judge import backtest
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
    DaskAddress,
    DateFormat,
    Events,
    ModelUri,
    Rejected,
    StepDays,
    TimestampCol,
    Transactions,
)
from churnclv.quiet import uses_mlflow
from churnclv.source import Source
from churnclv.tables import eligibility_table, events_table, metrics_table


@uses_mlflow
@closes_resources
def train(
    transactions: Transactions,
    as_of: AsOf = None,
    horizon_days: Annotated[int, typer.Option(min=1, help="Churn = no purchase in this many days after as-of.")] = HORIZON_DAYS,
    clv_horizon_days: Annotated[int, typer.Option(min=1, help="CLV horizon in days.")] = CLV_HORIZON_DAYS,
    discount_rate: Annotated[float, typer.Option(min=0.0, help="Annual discount rate of the CLV.")] = DISCOUNT_RATE,
    interval_level: Annotated[float, typer.Option(min=0.01, max=0.99, help=(
        "Central probability of every interval (per customer and the population's totals)."))] = 0.8,
    cutoffs: Cutoffs = STACKED_CUTOFFS,
    step_days: StepDays = CUTOFF_STEP_DAYS,
    dataset: Annotated[str | None, typer.Option(help="MLflow experiment suffix. Default: the file name, or cdnow.")] = None,
    events: Events = None,
    dask: DaskAddress = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Fit, backtest on the judging window (the same season a year earlier where the history holds it), log to
    MLflow, register "churn-clv" and gate the champion."""
    from churnclv.training.churn import CutoffPlan
    from churnclv.training.jobs import run_training
    from churnclv.training.pipeline import TrainConfig, eligibility, planned_steps
    from churnclv.training.registry import fail_abandoned_runs

    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected,
                    events)
    settings = command_settings()
    client = mlflow_client(settings)  # an unreachable or busy store stops the command before the data is read
    abandoned = fail_abandoned_runs(client)
    if abandoned:
        console.print(f"[yellow]Marked {len(abandoned)} MLflow run(s) FAILED: the training that logged them is gone "
                      f"({', '.join(abandoned)})[/]", highlight=False, soft_wrap=True)
    tx = source.load(settings, dask=dask)
    touchpoints = source.load_events(settings, tx)
    day = source.day(tx)
    config = TrainConfig(horizon_days=horizon_days, clv_horizon_days=clv_horizon_days, discount_rate=discount_rate,
                         interval_level=interval_level, plan=CutoffPlan(n_cutoffs=cutoffs, step_days=step_days))
    report = eligibility(tx, as_of=pd.Timestamp(day), config=config)
    console.print(eligibility_table(report))
    if touchpoints is not None:
        from churnclv.features.events import event_coverage

        customers = pd.Index(tx.loc[tx["timestamp"] < pd.Timestamp(day) + pd.Timedelta(days=1), "customer_id"].unique())
        console.print(events_table(event_coverage(touchpoints, as_of=day, customers=customers), as_of=iso(day)))
    report.raise_if_failed()
    total = planned_steps(tx, as_of=pd.Timestamp(day), config=config, events=touchpoints is not None)
    with (progress_bar() if dask is None else StepLines()) as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        task = bar.add_task("Training", total=total)
        outcome = run_training(
            tx, as_of=day, config=config, dataset=dataset or _dataset_name(source.transactions), client=client,
            artifact_root=settings.artifact_root,
            plots_dir=settings.plots_dir, progress=lambda what: bar.update(task, advance=1, description=what),
            events=touchpoints,
        )
        bar.update(task, completed=total, description="Trained and registered")
    console.print(metrics_table(outcome.result.metrics))
    _say_what_was_trained(outcome, horizon_days=config.horizon_days, caught=caught)


def _say_what_was_trained(outcome, *, horizon_days: int, caught: list[warnings.WarningMessage]) -> None:
    """``train``'s closing lines: which methods, which cutoffs, its notes, the run, the version, the gate."""
    meta = outcome.result.bundle.metadata
    stacked = (f"{len(meta['cutoffs'])} stacked cutoffs ({meta['cutoffs'][0]} .. {meta['cutoffs'][-1]})"
               if meta["cutoffs"] else "no stacked cutoffs (BG/NBD alone)")
    aucs = ", ".join(f"{m} {auc:.3f}" for m, auc in meta["churn_rankings"].items() if auc == auc)
    level = " (total: the LightGBM Poisson model's own)" if meta.get("purchases_level") == "lightgbm" else ""
    console.print(f"Churn by: {meta['churn_method']}; expected purchases by: {meta['purchases_method']}{level}; {stacked}; "
                  f"{meta['judging_window']}; churn AUC there: {aucs} (in-sample for this choice: churnclv backtest "
                  "judges on the real future)")
    if meta.get("population"):
        from churnclv.scoring.intervals import PopulationInterval

        console.print(f"Forecast, {PopulationInterval(**meta['population']).describe()}", highlight=False)
    numeric = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    notes = meta["notes"] + ([f"{len(numeric)} numerical warning(s) at trial points were silenced"] if numeric else [])
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"MLflow run {outcome.logged.run_id}, registered as {MODEL_NAME} v{outcome.logged.version}")
    console.print(f"[{'green' if outcome.promoted else 'yellow'}]{outcome.reason}[/]")
    console.print(f"Plots in {outcome.plots_dir}")


def suppress_unsubscribed(events: pd.DataFrame, *, source: str) -> None:
    """Consent follows the events: customers with an ``unsubscribe`` event go on the suppression list of the
    campaign store (no plan, control group or CSV lists them again), and the command says how many."""
    from churnclv.campaigns import suppress
    from churnclv.targeting import store, who

    ids = events.loc[events["kind"] == "unsubscribe", "customer_id"].unique().tolist()
    if not ids:
        return
    added = suppress(store(), ids, reason="unsubscribed (an unsubscribe event)", source=f"events:{Path(source).name}",
                     who=who())
    console.print(f"Suppressed {len(ids):,} customer(s) who unsubscribed ({added:,} new on the list).",
                  highlight=False, soft_wrap=True)


def _dataset_name(transactions: str) -> str:
    """The MLflow experiment's suffix: ``cdnow``, or the input's file (or a glob's folder) name."""
    if transactions.lower() == "cdnow":
        return "cdnow"
    path = Path(transactions)
    while any(ch in path.name for ch in "*?[") and path.parent != path:  # a glob names its folder
        path = path.parent
    return path.stem


@uses_mlflow
@closes_resources
def score(
    transactions: Transactions,
    as_of: AsOf = None,
    model: ModelUri = MODEL_URI,
    out: Annotated[Path | None, typer.Option(help="Output .parquet or .csv. Default: $CHURNCLV_HOME/scores/latest.parquet (with --dask: the folder $CHURNCLV_HOME/scores/latest/).")] = None,
    explain: Annotated[bool, typer.Option(help="Add each customer's top churn drivers (JSON).")] = False,
    events: Events = None,
    dask: DaskAddress = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Score every customer with the registered model and write the score table atomically (with a dated copy under
    $CHURNCLV_HOME/scores/ for churnclv monitor, and a warning when the customers drifted from the training ones)."""
    from churnclv.scoring.bundle import score_table
    from churnclv.scoring.drift import bundle_drift
    from churnclv.scoring.registry import load_bundle
    from churnclv.scoring.scores import is_parquet, keep_dated_copy, score_metadata, write_scores

    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected,
                    events)
    settings = command_settings()
    target = out or (settings.scores_path if dask is None else settings.scores_path.with_suffix(""))
    check_writable(target)
    if dask is not None and not (is_parquet(target) or not target.suffix):
        raise ChurnclvError(f"--out {target}: with --dask the scores are a folder of Parquet parts; give a folder "
                            "(or a name ending in .parquet)")
    with step(f"Loading {model}"):
        bundle = load_bundle(mlflow_client(settings), model)
    tx = source.load(settings, dask=dask)
    touchpoints = source.load_events(settings, tx)
    day = source.day(tx)
    if touchpoints is None and bundle.metadata.get("events"):
        console.print("[yellow]warning:[/] this model was trained with events (--events): without them every "
                      "customer is scored as one who never answered a survey, opened an e-mail or visited",
                      highlight=False, soft_wrap=True)
    if touchpoints is not None:
        suppress_unsubscribed(touchpoints, source=source.events)
    if dask is not None:
        return score_on_cluster(bundle, tx, day=day, out=target, explain=explain, kept_in=settings.root / "scores")
    with step(f"Scoring with {bundle.metadata.get('uri', model)}"):
        snapshot = bundle.snapshot(tx, as_of=day, events=touchpoints)
        table = score_table(bundle, tx, as_of=day, explain=explain, snapshot=snapshot, draws=True)
    drift = bundle_drift(bundle, snapshot, as_of=day)
    metadata = score_metadata(bundle, as_of=day) | ({"drift": json.dumps(drift)} if drift else {})
    try:
        path = write_scores(table, target, metadata)
        kept = keep_dated_copy(path, settings.root / "scores", metadata) if is_parquet(path) else None
    except OSError as exc:
        raise ChurnclvError(f"cannot write {target}: {exc.strerror or exc}") from None
    counts = table["segment"].value_counts().to_dict()
    console.print(f"Wrote {len(table):,} scores to [bold]{path}[/] (model v{metadata['model_version']}, "
                  f"as of {metadata['as_of']})")
    console.print("Segments: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    tell_kept_and_drift(path, kept, drift)
    if not is_parquet(path):
        console.print("[yellow]note:[/] a CSV file has no metadata: the as-of day and the model version are not "
                      "stored with it, and the service reports them as unknown; write .parquet to keep them",
                      highlight=False, soft_wrap=True)


def tell_kept_and_drift(path: Path, kept: Path | None, drift: dict | None) -> None:
    """The lines after a score table is written (by ``score`` and ``score --dask``): where the dated copy for
    ``churnclv monitor`` went, and the drift warning when the customers moved away from the training ones."""
    if kept is not None and kept != path:
        console.print(f"Kept a copy for the monitor (churnclv monitor): {kept}", highlight=False, soft_wrap=True)
    if drift is not None and drift["warning"]:
        console.print(f"[yellow]warning:[/] {drift['warning']}", highlight=False, soft_wrap=True)


@uses_mlflow
def promote(version: Annotated[str, typer.Argument(help=f"The {MODEL_NAME} version to make champion.")]) -> None:
    """Give a registered version the champion alias by hand."""
    from churnclv.training.registry import promote as set_champion

    set_champion(mlflow_client(command_settings()), version)
    console.print(f"{MODEL_NAME} v{version} is now the champion.")


def register(app: typer.Typer) -> None:
    """Add the model commands to ``app``."""
    for command in (train, backtest, score, promote):
        app.command()(command)
