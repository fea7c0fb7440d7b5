"""``backtest``, the real-future judge: train up to each as-of day, compare with what happened next."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from churnclv.context import command_settings, console, progress_bar
from churnclv.contract.dates import as_of_day
from churnclv.contract.defaults import CUTOFF_STEP_DAYS, HORIZON_DAYS, STACKED_CUTOFFS
from churnclv.contract.errors import ChurnclvError
from churnclv.options import (
    AMOUNT_COL,
    BAD_ROWS,
    CUSTOMER_COL,
    TIMESTAMP_COL,
    AmountCol,
    BadRows,
    CustomerCol,
    Cutoffs,
    DateFormat,
    Events,
    Rejected,
    StepDays,
    TimestampCol,
    Transactions,
    parse_day,
)
from churnclv.source import Source
from churnclv.tables import real_future_forecasts, real_future_table


def backtest(
    transactions: Transactions,
    as_of: Annotated[list[date] | None, typer.Option(
        "--as-of", metavar="DATE", parser=parse_day,
        help="Train on the transactions up to and including this day (YYYY-MM-DD) and judge on the next "
             "--horizon-days; repeat for several days. Default: the last day minus the horizon.")] = None,
    horizon_days: Annotated[int, typer.Option(
        min=1, help="The judged window, and the model's horizon, in days.")] = HORIZON_DAYS,
    cutoffs: Cutoffs = STACKED_CUTOFFS,
    step_days: StepDays = CUTOFF_STEP_DAYS,
    out: Annotated[Path | None, typer.Option(
        help="Also write the results (one row per date and model) to this .csv or .parquet.")] = None,
    events: Events = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Judge the model on the real future: train at each --as-of day D and compare its scores with what
    really happened next, beside lifetimes' BG/NBD and an RFM logistic regression.

    For each D, churnclv is trained as `train` does on the transactions up to and including D only, and
    judged on the next --horizon-days, (D, D + horizon], beside lifetimes' BG/NBD + Gamma-Gamma (fitted at
    D) and an RFM logistic regression (trained on the horizon before D): no model sees a row after D. E.g.
    --as-of 1997-09-30 --horizon-days 91 trains on data to 1997-09-30 and judges on 1997-10-01 ..
    1997-12-30. The data must run to the end of each window. With --events churnclv learns from the
    touchpoints too (run it without to compare). `train` instead reports a backtest on the horizon before
    its as-of day, the window its purchase forecast is chosen on. Nothing is logged or registered here.
    """
    from churnclv.contract import write_table
    from churnclv.training.churn import CutoffPlan
    from churnclv.training.pipeline import TrainConfig
    from churnclv.training.realfuture import check_future, judge_many, judge_steps

    source = Source(transactions, None, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected,
                    events)
    days = _parse_days(as_of)
    settings = command_settings()
    tx = source.load(settings)
    touchpoints = source.load_events(settings, tx)
    days = days or [_latest_judgeable(tx, horizon_days)]
    for day in days:
        check_future(tx, as_of=day, horizon_days=horizon_days)
    config = TrainConfig(horizon_days=horizon_days, plan=CutoffPlan(n_cutoffs=cutoffs, step_days=step_days))
    total = sum(judge_steps(tx, as_of=day, config=config, events=touchpoints is not None) for day in days)
    with progress_bar() as bar:
        task = bar.add_task("Training", total=total)
        results = judge_many(tx, as_ofs=days, horizon_days=horizon_days, config=config, events=touchpoints,
                             progress=lambda what: bar.update(task, advance=1, description=what))
        bar.update(task, completed=total, description=f"Judged {len(days)} date(s)")
    for _, rows in results.groupby("as_of", sort=True):
        _say_how_it_was_judged(rows)
    if out is not None:
        console.print(f"Wrote {len(results)} rows to [bold]{write_table(results, out)}[/]")


def _say_how_it_was_judged(rows: pd.DataFrame) -> None:
    """One date of ``backtest``: its table, what happened in the window, the models' notes."""
    from rich.markup import escape

    from churnclv.training.realfuture import MODEL_LABELS

    first = rows.iloc[0]
    console.print(real_future_table(rows))
    console.print(real_future_forecasts(rows))
    console.print(f"{first['customers']:,} customers scored; in the window: {first['actual_purchases']:,} "
                  f"purchases (customer-days), {first['actual_churn_rate']:.1%} bought nothing. churnclv's "
                  f"expected purchases by {first['purchases_method']}.")
    ours = rows.loc[rows["model"] == "churnclv"].iloc[0]
    if pd.notna(ours["interval_level"]):
        console.print(_intervals_line(ours))
    for _, row in rows.loc[rows["note"] != ""].iterrows():
        style = "dim" if row["model"] == "churnclv" else "yellow"  # training notes | a failed baseline
        console.print(f"[{style}]{escape(MODEL_LABELS[row['model']])}: {escape(row['note'])}[/]", highlight=False)


def _intervals_line(row: pd.Series) -> str:
    """churnclv's stated intervals against what happened: each total inside or outside, and the share of customers
    whose purchases fell inside their own interval."""
    totals = []
    for key, name in (("purchases", "total purchases"), ("spend", "spend")):
        low, high, actual = row[f"{key}_interval_low"], row[f"{key}_interval_high"], row[f"actual_{key}"]
        verdict = "inside" if low <= actual <= high else "[bold red]outside[/]"
        totals.append(f"{name} {low:,.0f}–{high:,.0f}, realised {actual:,.0f} ({verdict})")
    return (f"churnclv's {row['interval_level']:.0%} intervals: {'; '.join(totals)}; each customer's purchases "
            f"inside their own: {row['purchases_interval_coverage']:.1%} of customers.")


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
    from churnclv.training.realfuture import latest_judgeable

    day = latest_judgeable(tx, horizon_days=horizon_days)
    console.print(f"As of {day:%Y-%m-%d} (the last transaction day minus the {horizon_days}-day horizon: "
                  "the latest cut whose future is all in the data; set --as-of to change).")
    return as_of_day(day)
