"""The ``churnclv`` command: one thin sub-command per job.

Each command parses options, calls importable functions (the same ones the tests call) and prints
where its output went. Errors meant for the user are printed on one or two lines, without a traceback.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, fields
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from contract.dates import as_of_day, iso
from contract.defaults import CLV_HORIZON_DAYS, DISCOUNT_RATE, HORIZON_DAYS, MODEL_URI
from contract.errors import ChurnclvError
from contract.settings import Settings

app = typer.Typer(
    help="Churn and customer-lifetime-value scoring: features, training, batch scores and an HTTP service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
#: MLflow's switch for its artifact download progress bars.
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_SHARED_SETTINGS: ContextVar[Settings | None] = ContextVar("churnclv_settings", default=None)
#: What a command opened that must close when it ends (a Dask cluster): see :func:`closes_resources`.
_RESOURCES: ContextVar[ExitStack | None] = ContextVar("churnclv_resources", default=None)
DaskAddress = Annotated[str | None, typer.Option(
    "--dask", metavar="ADDRESS",
    help="Run on a Dask cluster: a scheduler's address (tcp://host:8786), or 'local' for 2 worker processes on "
         "this machine. -t is then a Parquet dataset (a folder, a glob like 'tx/*.parquet', or a file), read "
         "and shuffled by customer on the cluster; outputs are written as folders of Parquet parts.")]


def command_settings() -> Settings:
    """The settings of this command, read from the environment by :meth:`Settings.load` (``quickstart``
    lends its own to the commands it runs). An invalid variable raises ``SettingsError``: one line."""
    return _SHARED_SETTINGS.get() or Settings.load()


@contextmanager
def sharing(settings: Settings) -> Iterator[None]:
    """Let the commands run inside (by ``quickstart``) use ``settings`` rather than read them again."""
    token = _SHARED_SETTINGS.set(settings)
    try:
        yield
    finally:
        _SHARED_SETTINGS.reset(token)


@contextmanager
def step(message: str) -> Iterator[None]:
    """A spinner for a step that may take a few seconds."""
    with console.status(message):
        yield


@dataclass(frozen=True)
class Source:
    """Where the transactions come from and how to read them: the options every data command shares."""

    transactions: str
    as_of: date | None = None
    customer_col: str = "customer_id"
    timestamp_col: str = "timestamp"
    amount_col: str = "amount"
    date_format: str | None = None
    bad_rows: str = "fail"
    rejected: Path | None = None

    def load(self, settings: Settings, *, dask: str | None = None):
        """Read and validate the transactions; with ``--bad-rows drop``, say how many were dropped and where.

        With ``dask`` (an address or "local"): a ``training.partitioned.PartitionedLog`` on that cluster instead
        of a frame (the command must be wrapped in :func:`closes_resources`, which closes the cluster).
        """
        from features import load_transactions

        if dask is not None:
            return self.on_cluster(dask)
        if self.bad_rows not in ("fail", "drop"):
            raise typer.BadParameter("use 'fail' or 'drop'", param_hint="--bad-rows")
        report = (self.rejected or settings.root / "reports" / "rejected.csv") if self.bad_rows == "drop" else None
        with step(f"Reading {self.transactions}"):
            tx = load_transactions(self.transactions, customer_col=self.customer_col, timestamp_col=self.timestamp_col,
                                   amount_col=self.amount_col, date_format=self.date_format,
                                   bad_rows=self.bad_rows, report_path=report)  # type: ignore[arg-type]
        console.print(
            f"Read {len(tx):,} transactions of {tx['customer_id'].nunique():,} customers "
            f"({tx['timestamp'].min():%Y-%m-%d} to {tx['timestamp'].max():%Y-%m-%d})."
        )
        if report is not None:
            dropped = pd.read_csv(report)["row"].nunique()
            console.print(f"[yellow]Dropped {dropped:,} bad row(s); the report is in {report}[/]")
        return tx

    def day(self, tx) -> date:
        """The as-of day: the one asked for, or the last transaction day (and say so)."""
        if self.as_of is None:
            day = as_of_day(tx["timestamp"].max() if isinstance(tx, pd.DataFrame) else tx.last_day())
            console.print(f"As of {iso(day)} (the last transaction day; set --as-of to change).")
            return day
        return as_of_day(self.as_of)

    def on_cluster(self, address: str):
        """``--dask``: connect (or start a local cluster), read the Parquet dataset there, validated and
        shuffled by customer, and keep it in the cluster's memory; Dask's progress bar and dashboard show it."""
        from training.cluster import check_dataset, cluster, describe, persist, read_transactions
        from training.partitioned import PartitionedLog

        if self.bad_rows != "fail":
            raise ChurnclvError("--bad-rows drop is not available with --dask: fix the rows (the error names them), "
                                "or drop them with a run without --dask")
        check_dataset(self.transactions)
        stack = _RESOURCES.get()
        if stack is None:
            raise RuntimeError("Source.on_cluster needs a command wrapped in closes_resources")
        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines narrate every start and stop
        for chatty in ("distributed.shuffle", "distributed.nanny"):  # p2p shuffle notices; workers killed at exit
            logging.getLogger(chatty).setLevel(logging.ERROR)
        with (step("Starting a local Dask cluster" if address == "local" else f"Connecting to {address}"),
              warnings.catch_warnings()):
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            client = stack.enter_context(cluster(address))  # the dashboard moves to a free port: its link is printed
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        console.print(f"Dask: {threads} worker thread(s) at {client.scheduler.address}; dashboard "
                      f"{client.dashboard_link}", highlight=False, soft_wrap=True)
        console.print(f"Reading {self.transactions} and shuffling it by customer:", highlight=False)
        tx = persist(client, read_transactions(
            self.transactions, min_partitions=2 * threads, customer_col=self.customer_col,
            timestamp_col=self.timestamp_col, amount_col=self.amount_col, date_format=self.date_format))
        about = describe(tx, client)
        console.print(f"Read {about['rows']:,} transactions of {about['customers']:,} customers ({about['first']:%Y-%m-%d} "
                      f"to {about['last']:%Y-%m-%d}) into {tx.npartitions} partitions.")
        return PartitionedLog(tx, client)


def closes_resources(command):
    """Close what a command opened while it ran (a Dask cluster: ``Source.load(dask=...)``), however it ends."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with ExitStack() as stack:
            token = _RESOURCES.set(stack)
            try:
                return command(*args, **kwargs)
            finally:
                _RESOURCES.reset(token)

    return wrapper


def parse_day(value: str | date | None) -> date | None:
    """An --as-of value as a :class:`datetime.date` (:func:`contract.dates.as_of_day`), at parse time."""
    if value is None or isinstance(value, date):
        return value
    try:
        return as_of_day(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 1997-09-30") from None


SOURCE_OPTIONS = {
    "transactions": Annotated[str, typer.Option(
        "--transactions", "-t", help="CSV or Parquet file of transactions, or 'cdnow' for the built-in CDNOW log.")],
    "as_of": Annotated[date | None, typer.Option(
        parser=parse_day, metavar="DATE",
        help="Use transactions up to and including this day (YYYY-MM-DD). Default: the last day in the data.")],
    "customer_col": Annotated[str, typer.Option(help="Name of the customer id column in the input.")],
    "timestamp_col": Annotated[str, typer.Option(help="Name of the date/time column in the input.")],
    "amount_col": Annotated[str, typer.Option(help="Name of the amount column (negative = return).")],
    "date_format": Annotated[str | None, typer.Option(
        help="strftime format of the dates, e.g. %d/%m/%Y. Default: ISO 8601 or inferred.")],
    "bad_rows": Annotated[str, typer.Option(
        "--bad-rows", help="'fail' stops on any bad row (default); 'drop' drops bad rows and writes them to --rejected.")],
    "rejected": Annotated[Path | None, typer.Option(
        help="Where 'drop' writes the rejected rows. Default: $CHURNCLV_HOME/reports/rejected.csv.")],
}


def reads_transactions(command):
    """Give a command the shared input options (:data:`SOURCE_OPTIONS`); it receives them as ``source``.

    --transactions and --as-of come first in --help, the column and bad-row options last.
    """
    defaults = {f.name: f.default for f in fields(Source)}

    def option(name: str) -> inspect.Parameter:
        default = defaults[name] if defaults[name] is not MISSING else inspect.Parameter.empty
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=SOURCE_OPTIONS[name])

    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "source"]
    names = list(SOURCE_OPTIONS)

    @functools.wraps(command)
    def wrapper(**kwargs):
        source = Source(**{name: kwargs.pop(name) for name in names if name in kwargs})
        return command(source=source, **kwargs)

    parameters = [option(n) for n in names[:2]] + own + [option(n) for n in names[2:]]
    wrapper.__signature__ = inspect.Signature(parameters)
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def _default_out(name: str, settings: Settings) -> Path:
    return settings.out_dir / name


@app.command()
@closes_resources
@reads_transactions
def features(
    source: Source,
    out: Annotated[Path | None, typer.Option(help="Output .csv or .parquet. Default: $CHURNCLV_HOME/out/features.parquet.")] = None,
    dask: DaskAddress = None,
) -> None:
    """Build point-in-time customer features (RFM, behaviour windows, cohort) and write them."""
    from contract import write_table
    from features import build_features

    settings = command_settings()
    tx = source.load(settings, dask=dask)
    day = source.day(tx)
    if dask is not None:
        return features_on_cluster(tx, day=day, out=out or _default_out("features.parquet", settings))
    with step("Building features"):
        table = build_features(tx, as_of=day)
    path = write_table(table.reset_index(), out or _default_out("features.parquet", settings))
    console.print(f"Wrote {len(table):,} customers x {table.shape[1]} features to [bold]{path}[/]")


def features_on_cluster(log, *, day: date, out: Path) -> None:
    """``features --dask``: ``build_features`` on every customer partition, written as a folder of Parquet parts."""
    from features.build import FEATURE_COLUMNS
    from training.cluster import dataset_rows, features_by_partition, write_dataset

    check_writable(out)
    console.print("Building features on the cluster:")
    path = write_dataset(features_by_partition(log.transactions, as_of=day), out, log.client)
    console.print(f"Wrote {dataset_rows(path):,} customers x {len(FEATURE_COLUMNS)} features to [bold]{path}[/] "
                  f"({log.transactions.npartitions} Parquet parts)", soft_wrap=True)


@app.command()
@reads_transactions
def cohorts(
    source: Source,
    out: Annotated[Path | None, typer.Option(help="Retention table .csv or .parquet. Default: $CHURNCLV_HOME/out/cohorts.csv.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Heat-map PNG. Default: beside --out, with .png.")] = None,
) -> None:
    """Write the cohort retention table (acquisition month x months since) and its heat-map."""
    from contract import write_atomic, write_table
    from features import cohort_table, plot_cohort_table

    settings = command_settings()
    tx = source.load(settings)
    day = source.day(tx)
    table = cohort_table(tx, as_of=day)
    path = write_table(table.reset_index(), out or _default_out("cohorts.csv", settings))
    picture = plot or path.with_suffix(".png")
    figure = plot_cohort_table(table)
    write_atomic(picture, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    console.print(f"Wrote {len(table)} cohorts to [bold]{path}[/] and the heat-map to [bold]{picture}[/]")


ModelUri = Annotated[str, typer.Option("--model", help="Registered model URI (alias or version).")]


def _client(settings: Settings):
    """A client of the command's MLflow store (created, or migrated, under the store's lock)."""
    from scoring.registry import connect

    return connect(settings.mlflow_uri, settings.artifact_root)


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's chatter off for a command: its printed notices ("Successfully registered model ...",
    "Created version ...") and download progress bars. Its warnings and errors still reach stderr."""
    # imports MLflow, which configures its loggers. MLflow's own counted switch for its event stream
    # (what autologging uses): setting the stream's flag directly does not last, inner blocks reset it.
    from mlflow.utils.autologging_utils.logging_and_warnings import MlflowEventsAndWarningsBehaviorGlobally

    logger = logging.getLogger("mlflow")
    handler = logging.StreamHandler(_Stderr())  # MLflow's own handler writes to the silenced stream
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DropNoise())
    level, bar = logger.level, os.environ.get(PROGRESS_BAR)
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    os.environ[PROGRESS_BAR] = "false"
    try:
        with MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False,
                                                     reroute_warnings=False):
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        if bar is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = bar


def uses_mlflow(command):
    """Run a command with MLflow quiet (:func:`quiet_mlflow`)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with quiet_mlflow():
            return command(*args, **kwargs)

    return wrapper


def _dataset_name(transactions: str) -> str:
    if transactions.lower() == "cdnow":
        return "cdnow"
    path = Path(transactions)
    while any(ch in path.name for ch in "*?[") and path.parent != path:  # a glob names its folder
        path = path.parent
    return path.stem


@app.command()
@uses_mlflow
@closes_resources
@reads_transactions
def train(
    source: Source,
    horizon_days: Annotated[int, typer.Option(min=1, help="Churn = no purchase in this many days after as-of.")] = HORIZON_DAYS,
    clv_horizon_days: Annotated[int, typer.Option(min=1, help="CLV horizon in days.")] = CLV_HORIZON_DAYS,
    discount_rate: Annotated[float, typer.Option(min=0.0, help="Annual discount rate of the CLV.")] = DISCOUNT_RATE,
    cutoffs: Annotated[int, typer.Option(min=1, help="At most this many past snapshots are stacked.")] = 11,
    step_days: Annotated[int, typer.Option(min=1, help="Days between stacked snapshots.")] = 14,
    dataset: Annotated[str | None, typer.Option(help="MLflow experiment suffix. Default: the file name, or cdnow.")] = None,
    dask: DaskAddress = None,
) -> None:
    """Fit, backtest on the latest full horizon, log to MLflow, register "churn-clv" and gate the champion."""
    from training.churn import CutoffPlan
    from training.jobs import run_training
    from training.pipeline import TrainConfig, eligibility, planned_steps
    from training.registry import fail_abandoned_runs

    settings = command_settings()
    client = _client(settings)  # an unreachable or busy store stops the command before the data is read
    abandoned = fail_abandoned_runs(client)
    if abandoned:
        console.print(f"[yellow]Marked {len(abandoned)} MLflow run(s) FAILED: the training that logged them is gone "
                      f"({', '.join(abandoned)})[/]", highlight=False, soft_wrap=True)
    tx = source.load(settings, dask=dask)
    day = source.day(tx)
    config = TrainConfig(horizon_days=horizon_days, clv_horizon_days=clv_horizon_days, discount_rate=discount_rate,
                         plan=CutoffPlan(n_cutoffs=cutoffs, step_days=step_days))
    report = eligibility(tx, as_of=pd.Timestamp(day), config=config)
    console.print(eligibility_table(report))
    report.raise_if_failed()
    total = planned_steps(tx, as_of=pd.Timestamp(day), config=config)
    with (progress_bar() if dask is None else StepLines()) as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        task = bar.add_task("Training", total=total)
        outcome = run_training(
            tx, as_of=day, config=config, dataset=dataset or _dataset_name(source.transactions), client=client,
            artifact_root=settings.artifact_root,
            plots_dir=settings.plots_dir, progress=lambda what: bar.update(task, advance=1, description=what),
        )
        bar.update(task, completed=total, description="Trained and registered")
    console.print(metrics_table(outcome.result.metrics))
    meta = outcome.result.bundle.metadata
    stacked = (f"{len(meta['cutoffs'])} stacked cutoffs ({meta['cutoffs'][0]} .. {meta['cutoffs'][-1]})"
               if meta["cutoffs"] else "no stacked cutoffs (BG/NBD alone)")
    console.print(f"Churn by: {meta['churn_method']}; expected purchases by: {meta['purchases_method']}; {stacked}; "
                  f"backtest window {meta['backtest_origin']} + {config.horizon_days} days (in-sample: "
                  "churnclv backtest judges on the real future)")
    numeric = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    notes = meta["notes"] + ([f"{len(numeric)} numerical warning(s) at trial points were silenced"] if numeric else [])
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"MLflow run {outcome.logged.run_id}, registered as churn-clv v{outcome.logged.version}")
    console.print(f"[{'green' if outcome.promoted else 'yellow'}]{outcome.reason}[/]")
    console.print(f"Plots in {outcome.plots_dir}")


class StepLines:
    """The training steps one a line, where a live bar would fight Dask's own progress bars (``--dask``)."""

    def __enter__(self) -> StepLines:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        return 0

    def update(self, task: int, *, description: str, advance: int = 0, completed: int | None = None) -> None:
        console.print(description, highlight=False)


def progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def eligibility_table(report):
    """The eligibility gates as a table: value, what the model needs, ok / warning / FAILED."""
    from rich.table import Table

    table = Table(title=f"Can this log support the models? (as of {report.as_of})")
    for column in ("gate", "value", "needs", "status"):
        table.add_column(column, justify="right" if column in ("value", "needs") else "left")
    colour = {"ok": "green", "warning": "yellow", "FAILED": "red"}
    for g in report.gates:
        fmt = (lambda v: f"{v:.0%}") if g.name.startswith("share") else (lambda v: f"{v:,.0f}")
        table.add_row(g.name, fmt(g.value), f"{'>=' if g.at_least else '<='} {fmt(g.threshold)}",
                      f"[{colour[g.status]}]{g.status}[/]")
    return table


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


def _parse_days(texts: list[str | date] | None) -> list[date]:
    """The --as-of days of ``backtest``, sorted and unique; a ChurnclvError names any that is not a date."""
    days = set()
    for text in texts or []:
        try:
            days.add(as_of_day(text))
        except ValueError:
            raise ChurnclvError(f"--as-of {text!r} is not a date like 1997-09-30") from None
    return sorted(days)


def _latest_judgeable(tx: pd.DataFrame, horizon_days: int) -> date:
    """The default as-of day of ``backtest`` (and say so)."""
    from training.realfuture import latest_judgeable

    day = latest_judgeable(tx, horizon_days=horizon_days)
    console.print(f"As of {day:%Y-%m-%d} (the last transaction day minus the {horizon_days}-day horizon: "
                  "the latest cut whose future is all in the data; set --as-of to change).")
    return as_of_day(day)


def _real_future_table(rows: pd.DataFrame):
    """One date of :func:`training.realfuture.judge_many`: metrics down, models across."""
    from rich.table import Table

    from training.realfuture import MODEL_LABELS, MODEL_METRICS, MODELS

    first = rows.iloc[0]
    start = pd.Timestamp(first["as_of"]) + pd.Timedelta(days=1)
    table = Table(title=f"Trained on data to {first['as_of']}; judged on {start:%Y-%m-%d} .. "
                        f"{first['window_end']} (unseen)")
    table.add_column("metric")
    for m in MODELS:
        table.add_column(MODEL_LABELS[m], justify="right")
    labels = {**METRIC_ROWS, "purchases_poisson_deviance": "purchases Poisson deviance",
              "purchases_spearman": "purchases Spearman"}
    by_model = rows.set_index("model")
    for key in MODEL_METRICS["churnclv"]:
        cells = [("" if key not in MODEL_METRICS[m] else "n/a" if pd.isna(by_model.at[m, key])
                  else f"{by_model.at[m, key]:.3f}") for m in MODELS]
        table.add_row(labels[key], *cells)
    return table


_SHARED = SimpleNamespace(**SOURCE_OPTIONS)  # the shared input options, as annotations of ``backtest``


@app.command()
def backtest(
    transactions: _SHARED.transactions,
    as_of: Annotated[list[date] | None, typer.Option(
        "--as-of", metavar="DATE", parser=parse_day,
        help="Train on the transactions up to and including this day (YYYY-MM-DD) and judge on the next "
             "--horizon-days; repeat for several days. Default: the last day minus the horizon.")] = None,
    horizon_days: Annotated[int, typer.Option(
        min=1, help="The judged window, and the model's horizon, in days.")] = HORIZON_DAYS,
    cutoffs: Annotated[int, typer.Option(min=1, help="At most this many past snapshots are stacked.")] = 11,
    step_days: Annotated[int, typer.Option(min=1, help="Days between stacked snapshots.")] = 14,
    out: Annotated[Path | None, typer.Option(
        help="Also write the results (one row per date and model) to this .csv or .parquet.")] = None,
    customer_col: _SHARED.customer_col = "customer_id",
    timestamp_col: _SHARED.timestamp_col = "timestamp",
    amount_col: _SHARED.amount_col = "amount",
    date_format: _SHARED.date_format = None,
    bad_rows: _SHARED.bad_rows = "fail",
    rejected: _SHARED.rejected = None,
) -> None:
    """Judge the model on the real future: for each --as-of day D, train as `train` does on the
    transactions up to and including D only, then compare its scores with what really happened in the
    next --horizon-days, (D, D + horizon], beside lifetimes' BG/NBD + Gamma-Gamma (fitted at D) and an RFM
    logistic regression (trained on the horizon before D): no model sees a row after D. E.g. --as-of
    1997-09-30 --horizon-days 91 trains on data to 1997-09-30 and judges on 1997-10-01 .. 1997-12-30. The
    data must run to the end of each window. `train` instead reports a backtest on the horizon before its
    as-of day, the window its purchase forecast is chosen on. Nothing is logged or registered here.
    """
    from contract import write_table
    from training.churn import CutoffPlan
    from training.pipeline import TrainConfig
    from training.realfuture import MODEL_LABELS, check_future, judge_many, judge_steps

    source = Source(transactions=transactions, customer_col=customer_col, timestamp_col=timestamp_col,
                    amount_col=amount_col, date_format=date_format, bad_rows=bad_rows, rejected=rejected)
    days = _parse_days(as_of)
    tx = source.load(command_settings())
    days = days or [_latest_judgeable(tx, horizon_days)]
    for day in days:
        check_future(tx, as_of=day, horizon_days=horizon_days)
    config = TrainConfig(horizon_days=horizon_days, plan=CutoffPlan(n_cutoffs=cutoffs, step_days=step_days))
    total = sum(judge_steps(tx, as_of=day, config=config) for day in days)
    with progress_bar() as bar:
        task = bar.add_task("Training", total=total)
        results = judge_many(tx, as_ofs=days, horizon_days=horizon_days, config=config,
                             progress=lambda what: bar.update(task, advance=1, description=what))
        bar.update(task, completed=total, description=f"Judged {len(days)} date(s)")
    for _, rows in results.groupby("as_of", sort=True):
        first = rows.iloc[0]
        console.print(_real_future_table(rows))
        console.print(f"{first['customers']:,} customers scored; in the window: {first['actual_purchases']:,} "
                      f"purchases (customer-days), {first['actual_churn_rate']:.1%} bought nothing. churnclv's "
                      f"expected purchases by {first['purchases_method']}.")
        for _, row in rows.loc[rows["note"] != ""].iterrows():
            style = "dim" if row["model"] == "churnclv" else "yellow"  # training notes | a failed baseline
            console.print(f"[{style}]{MODEL_LABELS[row['model']]}: {row['note']}[/]", highlight=False)
    if out is not None:
        console.print(f"Wrote {len(results)} rows to [bold]{write_table(results, out)}[/]")


@app.command()
@uses_mlflow
@closes_resources
@reads_transactions
def score(
    source: Source,
    model: ModelUri = MODEL_URI,
    out: Annotated[Path | None, typer.Option(help="Output .parquet or .csv. Default: $CHURNCLV_HOME/scores/latest.parquet (with --dask: the folder $CHURNCLV_HOME/scores/latest/).")] = None,
    explain: Annotated[bool, typer.Option(help="Add each customer's top churn drivers (JSON).")] = False,
    dask: DaskAddress = None,
) -> None:
    """Score every customer with the registered model and write the score table atomically."""
    from scoring.bundle import score_table
    from scoring.registry import load_bundle
    from scoring.scores import is_parquet, score_metadata, write_scores

    settings = command_settings()
    target = out or (settings.scores_path if dask is None else settings.scores_path.with_suffix(""))
    check_writable(target)
    if dask is not None and not (is_parquet(target) or not target.suffix):
        raise ChurnclvError(f"--out {target}: with --dask the scores are a folder of Parquet parts; give a folder "
                            "(or a name ending in .parquet)")
    with step(f"Loading {model}"):
        bundle = load_bundle(_client(settings), model)
    tx = source.load(settings, dask=dask)
    day = source.day(tx)
    if dask is not None:
        return score_on_cluster(bundle, tx, day=day, out=target, explain=explain)
    with step(f"Scoring with {bundle.metadata.get('uri', model)}"):
        table = score_table(bundle, tx, as_of=day, explain=explain)
    metadata = score_metadata(bundle, as_of=day)
    try:
        path = write_scores(table, target, metadata)
    except OSError as exc:
        raise ChurnclvError(f"cannot write {target}: {exc.strerror or exc}") from None
    counts = table["segment"].value_counts().to_dict()
    console.print(f"Wrote {len(table):,} scores to [bold]{path}[/] (model v{metadata['model_version']}, "
                  f"as of {metadata['as_of']})")
    console.print("Segments: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if not is_parquet(path):
        console.print("[yellow]note:[/] a CSV file has no metadata: the as-of day and the model version are not "
                      "stored with it, and the service reports them as unknown; write .parquet to keep them",
                      highlight=False, soft_wrap=True)


def score_on_cluster(bundle, log, *, day: date, out: Path, explain: bool) -> None:
    """``score --dask``: the bundle on every customer partition, written as a folder of Parquet parts, each
    carrying the score table's metadata (the as-of day, the model)."""
    from scoring.scores import score_metadata
    from training.cluster import scores_by_partition, write_scores_dataset

    metadata = score_metadata(bundle, as_of=day)
    console.print(f"Scoring with {bundle.metadata.get('uri', 'the model')} on the cluster:", highlight=False)
    path = write_scores_dataset(scores_by_partition(bundle, log.transactions, as_of=day, explain=explain), out,
                                metadata, log.client)
    counts = pd.read_parquet(path, columns=["segment"])["segment"].value_counts()
    console.print(f"Wrote {int(counts.sum()):,} scores to [bold]{path}[/] ({log.transactions.npartitions} Parquet "
                  f"parts; model v{metadata['model_version']}, as of {metadata['as_of']})", soft_wrap=True)
    console.print("Segments: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    console.print(f"Serve them with: churnclv serve --scores {path}", highlight=False, soft_wrap=True)


def check_writable(path: Path) -> None:
    """Refuse, in one line and before any work, an output path whose folder cannot be created or written."""
    folder = path.expanduser().absolute().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ChurnclvError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ChurnclvError(f"cannot write {path}: no permission to write in {existing}")


@app.command()
@uses_mlflow
def promote(version: Annotated[str, typer.Argument(help="The churn-clv version to make champion.")]) -> None:
    """Give a registered version the champion alias by hand."""
    from training.registry import promote as set_champion

    set_champion(_client(command_settings()), version)
    console.print(f"churn-clv v{version} is now the champion.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on; anything but loopback needs API keys.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 3000,
    model: ModelUri = MODEL_URI,
    scores: Annotated[Path | None, typer.Option(help="Score table to serve. Default: $CHURNCLV_HOME/scores/latest.parquet.")] = None,
    api_keys_file: Annotated[Path | None, typer.Option(help="File of API keys, one a line (or CHURNCLV_API_KEYS=k1,k2; default: $CHURNCLV_HOME/.churnclv_api_key if present).")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Serve without API keys (loopback host only).")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes, each holding the model and the table. Default: 2.")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log a line per request.")] = False,
) -> None:
    """Start the HTTP service (BentoML): /score, /score_transactions, /prioritise, /model, /reload."""
    from serving.cli_serve import serve as run_server

    check_served_model(model)
    run_server(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file, open_=open_,
               workers=workers, access_log=access_log)


@app.command()
@uses_mlflow
def bento(
    model: ModelUri = MODEL_URI,
    project: Annotated[Path | None, typer.Option(help="Folder of bentofile.yaml and the code it packages. Default: this installation's source.")] = None,
) -> None:
    """Package the service with a registered model as a Bento (BentoML's deployable unit).

    The model's bundle is copied into BentoML's model store, then `bentoml build` runs on bentofile.yaml,
    which names it: the Bento serves that model, whatever the registry's champion becomes later.
    """
    from serving.bento import SOURCE, build, import_model

    settings = command_settings()
    with step(f"Copying {model} into BentoML's model store"):
        packaged = import_model(_client(settings), model)
    with step("Building the Bento"):
        built = build(project or SOURCE)
    console.print(f"Built Bento [bold]{built.tag}[/] with model {packaged.tag} "
                  f"(churn-clv v{packaged.info.metadata['version']}). Serve it with:\n"
                  f"  CHURNCLV_API_KEYS=<key> CHURNCLV_SCORES_PATH={settings.scores_path} bentoml serve {built.tag}",
                  highlight=False, soft_wrap=True)


def check_served_model(model: str) -> None:
    """The service serves a registered version (pinned, with its backtest metrics): refuse anything else
    in one line, before the server starts."""
    if model.startswith("models:/"):
        return
    scheme = model.partition(":")[0].lower() if ":" in model else ""
    kind = {"runs": "a run's model (runs:/)", "file": "a file:// URI", "": "a path"}.get(
        scheme, f"a {scheme}: URI" if len(scheme) > 1 else "a path")
    raise ChurnclvError(
        f"--model {model!r} is {kind}, not a registered model: the service serves a registered version; pass "
        f"{MODEL_URI} or models:/churn-clv/<version> (churnclv train registers one)"
    )


def seed_path() -> Path:
    """The committed seed transactions shipped in ``seeds/``."""
    import importlib.resources

    return Path(str(importlib.resources.files("seeds") / "transactions.csv"))


def ensure_api_key(settings: Settings) -> str:
    """The local API key in $CHURNCLV_HOME (created once, readable by its owner only)."""
    import secrets

    from contract import write_atomic

    path = settings.local_key_file
    if not path.exists():
        key = secrets.token_urlsafe(32)
        write_atomic(path, lambda tmp: (tmp.write_text(key + "\n"), tmp.chmod(0o600)))
    return path.read_text().strip()


@app.command()
@uses_mlflow
def quickstart(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the HTTP service at the end.")] = True,
    port: Annotated[int, typer.Option(help="Port of the HTTP service.")] = 3000,
) -> None:
    """The main job end to end on the seed data: features, cohorts, train (if no champion yet), score, serve."""
    from training.registry import champion

    settings = command_settings()
    source = str(seed_path())
    with sharing(settings):
        features(transactions=source)
        cohorts(transactions=source)
        current = champion(_client(settings))
        if current is None:
            train(transactions=source, dataset="seed")
        else:
            console.print(f"churn-clv v{current.version} is the champion already (retrain with churnclv train).")
        score(transactions=source, explain=True)
    key = ensure_api_key(settings)
    console.print(f"[green]Done.[/] Features and cohorts in {settings.out_dir}, scores in {settings.scores_path}, "
                  f"plots in {settings.plots_dir}, MLflow store at {settings.mlflow_uri}.")
    console.print(f"API key (kept in {settings.local_key_file}):\n  {key}")
    example = (f"curl -s -X POST http://127.0.0.1:{port}/prioritise -H 'Authorization: Bearer {key}' "
               "-H 'Content-Type: application/json' -d '{\"limit\": 5}'")
    console.print(f"Try:\n  {example}\nor open the marketers' page http://127.0.0.1:{port}/app (it asks for the key)",
                  highlight=False, soft_wrap=True)
    if serve_after:
        from serving.cli_serve import serve as run_server

        run_server(host="127.0.0.1", port=port, model=MODEL_URI, scores=None,
                   api_keys_file=settings.local_key_file, open_=False)


class _DropNoise(logging.Filter):
    """MLflow's warning that pyfunc models are pickled: known and chosen (the bundle is our own class)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "CloudPickle" not in record.getMessage()


def quiet_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mlflow.pyfunc").addFilter(_DropNoise())


def main() -> None:
    """Console entry point: user errors become a short message and exit code 2."""
    from contract import ChurnclvError

    quiet_logging()
    try:
        app()
    except ChurnclvError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one line per line of the message
        sys.exit(2)
