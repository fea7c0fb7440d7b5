"""The ``churnclv`` command: one thin sub-command per job.

Each command parses options, calls importable functions (the same ones the tests call) and prints
where its output went. Errors meant for the user are printed on one or two lines, without a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from churnclv.settings import Settings

app = typer.Typer(
    help="Churn and customer-lifetime-value scoring: features, training, batch scores and an HTTP service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

Transactions = Annotated[
    str,
    typer.Option(
        "--transactions", "-t", help="CSV or Parquet file of transactions, or 'cdnow' for the built-in CDNOW log."
    ),
]
AsOf = Annotated[
    str | None,
    typer.Option(help="Use transactions up to and including this day (YYYY-MM-DD). Default: the last day in the data."),
]
CustomerCol = Annotated[str, typer.Option(help="Name of the customer id column in the input.")]
TimestampCol = Annotated[str, typer.Option(help="Name of the date/time column in the input.")]
AmountCol = Annotated[str, typer.Option(help="Name of the amount column (negative = return).")]
DateFormat = Annotated[
    str | None, typer.Option(help="strftime format of the dates, e.g. %d/%m/%Y. Default: ISO 8601 or inferred.")
]
BadRowsOpt = Annotated[
    str,
    typer.Option(
        "--bad-rows",
        help="'fail' stops on any bad row (default); 'drop' drops bad rows and writes them to --rejected.",
    ),
]
Rejected = Annotated[
    Path | None, typer.Option(help="Where 'drop' writes the rejected rows. Default: $CHURNCLV_HOME/reports/rejected.csv.")
]


@contextmanager
def step(message: str) -> Iterator[None]:
    """A spinner for a step that may take a few seconds."""
    with console.status(message):
        yield


def load(
    transactions: str,
    *,
    customer_col: str,
    timestamp_col: str,
    amount_col: str,
    date_format: str | None,
    bad_rows: str,
    rejected: Path | None,
    settings: Settings,
) -> pd.DataFrame:
    from features import load_transactions

    if bad_rows not in ("fail", "drop"):
        raise typer.BadParameter("use 'fail' or 'drop'", param_hint="--bad-rows")
    report = (rejected or settings.root / "reports" / "rejected.csv") if bad_rows == "drop" else None
    with step(f"Reading {transactions}"):
        tx = load_transactions(
            transactions,
            customer_col=customer_col,
            timestamp_col=timestamp_col,
            amount_col=amount_col,
            date_format=date_format,
            bad_rows=bad_rows,  # type: ignore[arg-type]
            report_path=report,
        )
    console.print(
        f"Read {len(tx):,} transactions of {tx['customer_id'].nunique():,} customers "
        f"({tx['timestamp'].min():%Y-%m-%d} to {tx['timestamp'].max():%Y-%m-%d})."
    )
    if report is not None:
        dropped = pd.read_csv(report)["row"].nunique()
        console.print(f"[yellow]Dropped {dropped:,} bad row(s); the report is in {report}[/]")
    return tx


def resolve_as_of(tx: pd.DataFrame, as_of: str | None) -> pd.Timestamp:
    """The as-of day: the one asked for, or the last transaction day (and say so)."""
    if as_of is None:
        day = tx["timestamp"].max().normalize()
        console.print(f"As of {day:%Y-%m-%d} (the last transaction day; set --as-of to change).")
        return day
    try:
        return pd.Timestamp(date.fromisoformat(as_of))
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date like 1997-09-30", param_hint="--as-of") from None


def _default_out(name: str, settings: Settings) -> Path:
    return settings.out_dir / name


@app.command()
def features(
    transactions: Transactions,
    out: Annotated[Path | None, typer.Option(help="Output .csv or .parquet. Default: $CHURNCLV_HOME/out/features.parquet.")] = None,
    as_of: AsOf = None,
    customer_col: CustomerCol = "customer_id",
    timestamp_col: TimestampCol = "timestamp",
    amount_col: AmountCol = "amount",
    date_format: DateFormat = None,
    bad_rows: BadRowsOpt = "fail",
    rejected: Rejected = None,
) -> None:
    """Build point-in-time customer features (RFM, behaviour windows, cohort) and write them."""
    from features import build_features, write_table

    settings = Settings()
    tx = load(transactions, customer_col=customer_col, timestamp_col=timestamp_col, amount_col=amount_col,
              date_format=date_format, bad_rows=bad_rows, rejected=rejected, settings=settings)
    day = resolve_as_of(tx, as_of)
    with step("Building features"):
        table = build_features(tx, as_of=day)
    path = write_table(table.reset_index(), out or _default_out("features.parquet", settings))
    console.print(f"Wrote {len(table):,} customers x {table.shape[1]} features to [bold]{path}[/]")


@app.command()
def cohorts(
    transactions: Transactions,
    out: Annotated[Path | None, typer.Option(help="Retention table .csv or .parquet. Default: $CHURNCLV_HOME/out/cohorts.csv.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Heat-map PNG. Default: beside --out, with .png.")] = None,
    as_of: AsOf = None,
    customer_col: CustomerCol = "customer_id",
    timestamp_col: TimestampCol = "timestamp",
    amount_col: AmountCol = "amount",
    date_format: DateFormat = None,
    bad_rows: BadRowsOpt = "fail",
    rejected: Rejected = None,
) -> None:
    """Write the cohort retention table (acquisition month x months since) and its heat-map."""
    from features import cohort_table, plot_cohort_table, write_atomic, write_table

    settings = Settings()
    tx = load(transactions, customer_col=customer_col, timestamp_col=timestamp_col, amount_col=amount_col,
              date_format=date_format, bad_rows=bad_rows, rejected=rejected, settings=settings)
    day = resolve_as_of(tx, as_of)
    table = cohort_table(tx, as_of=day)
    path = write_table(table.reset_index(), out or _default_out("cohorts.csv", settings))
    picture = plot or path.with_suffix(".png")
    figure = plot_cohort_table(table)
    write_atomic(picture, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    console.print(f"Wrote {len(table)} cohorts to [bold]{path}[/] and the heat-map to [bold]{picture}[/]")


ModelUri = Annotated[str, typer.Option("--model", help="Registered model URI (alias or version).")]


def _client(settings: Settings):
    from training.registry import connect

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # after import: MLflow sets INFO on import
    return connect(settings.mlflow_uri, settings.artifact_root if settings.tracking_uri is None else None)


def _dataset_name(transactions: str) -> str:
    return "cdnow" if transactions.lower() == "cdnow" else Path(transactions).stem


@app.command()
def train(
    transactions: Transactions,
    as_of: AsOf = None,
    horizon_days: Annotated[int, typer.Option(min=1, help="Churn = no purchase in this many days after as-of.")] = 90,
    clv_horizon_days: Annotated[int, typer.Option(min=1, help="CLV horizon in days.")] = 365,
    discount_rate: Annotated[float, typer.Option(min=0.0, help="Annual discount rate of the CLV.")] = 0.10,
    cutoffs: Annotated[int, typer.Option(min=1, help="At most this many past snapshots are stacked.")] = 11,
    step_days: Annotated[int, typer.Option(min=1, help="Days between stacked snapshots.")] = 14,
    dataset: Annotated[str | None, typer.Option(help="MLflow experiment suffix. Default: the file name, or cdnow.")] = None,
    customer_col: CustomerCol = "customer_id",
    timestamp_col: TimestampCol = "timestamp",
    amount_col: AmountCol = "amount",
    date_format: DateFormat = None,
    bad_rows: BadRowsOpt = "fail",
    rejected: Rejected = None,
) -> None:
    """Fit, backtest on the latest full horizon, log to MLflow, register "churn-clv" and gate the champion."""
    from training.churn import CutoffPlan
    from training.jobs import run_training
    from training.pipeline import TrainConfig, planned_steps

    settings = Settings()
    tx = load(transactions, customer_col=customer_col, timestamp_col=timestamp_col, amount_col=amount_col,
              date_format=date_format, bad_rows=bad_rows, rejected=rejected, settings=settings)
    day = resolve_as_of(tx, as_of)
    config = TrainConfig(horizon_days=horizon_days, clv_horizon_days=clv_horizon_days, discount_rate=discount_rate,
                         plan=CutoffPlan(n_cutoffs=cutoffs, step_days=step_days))
    total = planned_steps(tx, as_of=day, config=config)
    with progress_bar() as bar:
        task = bar.add_task("Training", total=total)
        outcome = run_training(
            tx, as_of=day, config=config, dataset=dataset or _dataset_name(transactions), client=_client(settings),
            artifact_root=settings.artifact_root if settings.tracking_uri is None else None,
            plots_dir=settings.plots_dir, progress=lambda what: bar.update(task, advance=1, description=what),
        )
        bar.update(task, completed=total, description="Trained and registered")
    console.print(metrics_table(outcome.result.metrics))
    meta = outcome.result.bundle.metadata
    console.print(f"Expected purchases by: {meta['purchases_method']}; {len(meta['cutoffs'])} stacked cutoffs "
                  f"({meta['cutoffs'][0]} .. {meta['cutoffs'][-1]}); backtest window {meta['backtest_origin']} "
                  f"+ {config.horizon_days} days")
    console.print(f"MLflow run {outcome.logged.run_id}, registered as churn-clv v{outcome.logged.version}")
    console.print(f"[{'green' if outcome.promoted else 'yellow'}]{outcome.reason}[/]")
    console.print(f"Plots in {outcome.plots_dir}")


def progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


METRIC_ROWS = {
    "roc_auc": "churn ROC AUC", "pr_auc": "churn PR AUC", "brier": "Brier score",
    "calibration_error": "calibration error", "lift_top_decile": "lift, top decile",
    "purchases_total_error_pct": "total purchases error %", "purchases_mae": "purchases MAE / customer",
    "spend_total_error_pct": "total spend error %", "spend_mae": "spend MAE / customer",
    "spend_spearman": "spend Spearman",
}


def metrics_table(metrics: dict):
    from rich.table import Table

    table = Table(title="Backtest on the held-out horizon")
    table.add_column("metric")
    models = ["lightgbm", "bgnbd", "rfm_logistic"]
    for m in models:
        table.add_column({"lightgbm": "churnclv", "bgnbd": "BG/NBD", "rfm_logistic": "RFM logistic"}[m], justify="right")
    for key, label in METRIC_ROWS.items():
        table.add_row(label, *(f"{metrics[m][key]:.3f}" if key in metrics.get(m, {}) else "" for m in models))
    return table


@app.command()
def score(
    transactions: Transactions,
    as_of: AsOf = None,
    model: ModelUri = "models:/churn-clv@champion",
    out: Annotated[Path | None, typer.Option(help="Output .parquet or .csv. Default: $CHURNCLV_HOME/scores/latest.parquet.")] = None,
    explain: Annotated[bool, typer.Option(help="Add each customer's top churn drivers (JSON).")] = False,
    customer_col: CustomerCol = "customer_id",
    timestamp_col: TimestampCol = "timestamp",
    amount_col: AmountCol = "amount",
    date_format: DateFormat = None,
    bad_rows: BadRowsOpt = "fail",
    rejected: Rejected = None,
) -> None:
    """Score every customer with the registered model and write the score table atomically."""
    from features import write_table
    from training.bundle import score_table
    from training.registry import load_bundle

    settings = Settings()
    with step(f"Loading {model}"):
        bundle = load_bundle(_client(settings), model)
    tx = load(transactions, customer_col=customer_col, timestamp_col=timestamp_col, amount_col=amount_col,
              date_format=date_format, bad_rows=bad_rows, rejected=rejected, settings=settings)
    day = resolve_as_of(tx, as_of)
    with step(f"Scoring with {bundle.metadata.get('uri', model)}"):
        table = score_table(bundle, tx, as_of=day, explain=explain)
    path = write_table(table, out or settings.scores_path)
    counts = table["segment"].value_counts().to_dict()
    console.print(f"Wrote {len(table):,} scores to [bold]{path}[/] (model v{table.attrs['model_version']}, as of {day:%Y-%m-%d})")
    console.print("Segments: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@app.command()
def promote(version: Annotated[str, typer.Argument(help="The churn-clv version to make champion.")]) -> None:
    """Give a registered version the champion alias by hand."""
    from training.registry import promote as set_champion

    set_champion(_client(Settings()), version)
    console.print(f"churn-clv v{version} is now the champion.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on; anything but loopback needs API keys.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 3000,
    model: ModelUri = "models:/churn-clv@champion",
    scores: Annotated[Path | None, typer.Option(help="Score table to serve. Default: $CHURNCLV_HOME/scores/latest.parquet.")] = None,
    api_keys_file: Annotated[Path | None, typer.Option(help="File of API keys, one a line (or CHURNCLV_API_KEYS=k1,k2; default: $CHURNCLV_HOME/.churnclv_api_key if present).")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Serve without API keys (loopback host only).")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes, each holding the model and the table. Default: 2.")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log a line per request.")] = False,
) -> None:
    """Start the HTTP service (BentoML): /score, /score_transactions, /prioritise, /model, /reload."""
    from serving.cli_serve import serve as run_server

    run_server(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file, open_=open_,
               workers=workers, access_log=access_log)


def seed_path() -> Path:
    """The committed seed transactions shipped in ``seeds/``."""
    import importlib.resources

    return Path(str(importlib.resources.files("seeds") / "transactions.csv"))


def ensure_api_key(settings: Settings) -> str:
    """The local API key in $CHURNCLV_HOME (created once, readable by its owner only)."""
    import secrets

    from features import write_atomic

    path = settings.api_key_file
    if not path.exists():
        key = secrets.token_urlsafe(32)
        write_atomic(path, lambda tmp: (tmp.write_text(key + "\n"), tmp.chmod(0o600)))
    return path.read_text().strip()


@app.command()
def quickstart(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the HTTP service at the end.")] = True,
    port: Annotated[int, typer.Option(help="Port of the HTTP service.")] = 3000,
) -> None:
    """The main job end to end on the seed data: features, cohorts, train (if no champion yet), score, serve."""
    from training.registry import champion

    settings = Settings()
    source = str(seed_path())
    columns = dict(customer_col="customer_id", timestamp_col="timestamp", amount_col="amount", date_format=None,
                   bad_rows="fail", rejected=None)
    features(transactions=source, out=None, as_of=None, **columns)
    cohorts(transactions=source, out=None, plot=None, as_of=None, **columns)
    current = champion(_client(settings))
    if current is None:
        train(transactions=source, as_of=None, horizon_days=90, clv_horizon_days=365, discount_rate=0.10,
              cutoffs=11, step_days=14, dataset="seed", **columns)
    else:
        console.print(f"churn-clv v{current.version} is the champion already (retrain with churnclv train).")
    score(transactions=source, as_of=None, model="models:/churn-clv@champion", out=None, explain=True, **columns)
    key = ensure_api_key(settings)
    console.print(f"[green]Done.[/] Features and cohorts in {settings.out_dir}, scores in {settings.scores_path}, "
                  f"plots in {settings.plots_dir}, MLflow store at {settings.mlflow_uri}.")
    console.print(f"API key (kept in {settings.api_key_file}):\n  {key}")
    example = (f"curl -s -X POST http://127.0.0.1:{port}/prioritise -H 'Authorization: Bearer {key}' "
               "-H 'Content-Type: application/json' -d '{\"limit\": 5}'")
    console.print(f"Try:\n  {example}", highlight=False, soft_wrap=True)
    if serve_after:
        from serving.cli_serve import serve as run_server

        run_server(host="127.0.0.1", port=port, model="models:/churn-clv@champion", scores=None,
                   api_keys_file=settings.api_key_file, open_=False)


class _DropNoise(logging.Filter):
    """MLflow's warning that pyfunc models are pickled: known and chosen (the bundle is our own class)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "CloudPickle" not in record.getMessage()


def quiet_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mlflow.pyfunc").addFilter(_DropNoise())


def main() -> None:
    """Console entry point: user errors become a short message and exit code 2."""
    from features import ChurnclvError

    quiet_logging()
    try:
        app()
    except ChurnclvError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
