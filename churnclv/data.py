"""The data commands: ``features`` and ``cohorts`` (what a log says before any model is fitted)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnclv.cluster import features_on_cluster
from churnclv.context import closes_resources, command_settings, console, default_out, step
from churnclv.options import (
    AMOUNT_COL,
    BAD_ROWS,
    CUSTOMER_COL,
    TIMESTAMP_COL,
    AmountCol,
    AsOf,
    BadRows,
    CustomerCol,
    DaskAddress,
    DateFormat,
    Events,
    Rejected,
    TimestampCol,
    Transactions,
)
from churnclv.source import Source


@closes_resources
def features(
    transactions: Transactions,
    as_of: AsOf = None,
    out: Annotated[Path | None, typer.Option(help="Output .csv or .parquet. Default: $CHURNCLV_HOME/out/features.parquet.")] = None,
    events: Events = None,
    dask: DaskAddress = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Build point-in-time customer features (RFM, behaviour windows, cohort; touchpoints with --events) and
    write them."""
    from churnclv.contract import write_table
    from churnclv.features import build_features

    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected,
                    events)
    settings = command_settings()
    tx = source.load(settings, dask=dask)
    touchpoints = source.load_events(settings, tx)
    day = source.day(tx)
    if dask is not None:
        return features_on_cluster(tx, day=day, out=out or default_out("features.parquet", settings))
    with step("Building features"):
        table = build_features(tx, as_of=day, events=touchpoints)
    path = write_table(table.reset_index(), out or default_out("features.parquet", settings))
    console.print(f"Wrote {len(table):,} customers x {table.shape[1]} features to [bold]{path}[/]")


def cohorts(
    transactions: Transactions,
    as_of: AsOf = None,
    out: Annotated[Path | None, typer.Option(help="Retention table .csv or .parquet. Default: $CHURNCLV_HOME/out/cohorts.csv.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Heat-map PNG. Default: beside --out, with .png.")] = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Write the cohort retention table (acquisition month x months since) and its heat-map."""
    from churnclv.contract import write_atomic, write_table
    from churnclv.features import cohort_table, plot_cohort_table

    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected)
    settings = command_settings()
    tx = source.load(settings)
    day = source.day(tx)
    table = cohort_table(tx, as_of=day)
    path = write_table(table.reset_index(), out or default_out("cohorts.csv", settings))
    picture = plot or path.with_suffix(".png")
    figure = plot_cohort_table(table)
    write_atomic(picture, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    console.print(f"Wrote {len(table)} cohorts to [bold]{path}[/] and the heat-map to [bold]{picture}[/]")


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    app.command()(features)
    app.command()(cohorts)
