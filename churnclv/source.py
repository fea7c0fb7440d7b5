"""Where a command's transactions come from and how they are read: the input options as one value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import typer

from churnclv import cluster
from churnclv.context import console, step
from churnclv.contract.dates import as_of_day, iso
from churnclv.contract.settings import Settings
from churnclv.options import AMOUNT_COL, BAD_ROWS, CUSTOMER_COL, TIMESTAMP_COL


@dataclass(frozen=True)
class Source:
    """Where the transactions come from and how to read them: the options every data command shares
    (:mod:`churnclv.options`), in their ``--help`` order."""

    transactions: str
    as_of: date | None = None
    customer_col: str = CUSTOMER_COL
    timestamp_col: str = TIMESTAMP_COL
    amount_col: str = AMOUNT_COL
    date_format: str | None = None
    bad_rows: str = BAD_ROWS
    rejected: Path | None = None
    events: str | None = None

    def load(self, settings: Settings, *, dask: str | None = None):
        """Read and validate the transactions; with ``--bad-rows drop``, say how many were dropped and where.

        With ``dask`` (an address or "local"): a ``training.partitioned.PartitionedLog`` on that cluster instead
        of a frame (the command must be wrapped in :func:`churnclv.context.closes_resources`, which closes the
        cluster).
        """
        from churnclv.features import load_transactions

        if dask is not None:
            return cluster.read_on_cluster(self, dask, erased=erased_customers(settings))
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
        say_dropped(report, "row")
        return without_erased(tx, settings)

    def load_events(self, settings: Settings, tx: pd.DataFrame | None) -> pd.DataFrame | None:
        """Read and validate ``--events`` (None without it) with the transactions' column mapping and
        --bad-rows; say how many there are of each kind, and how many belong to no customer of ``tx``."""
        if self.events is None:
            return None
        if not isinstance(tx, pd.DataFrame):
            raise typer.BadParameter("events are read in one process only: leave out --events or --dask",
                                     param_hint="--events")
        from churnclv.features import load_events
        from churnclv.features.events import unknown_customers

        report = (settings.root / "reports" / "rejected_events.csv") if self.bad_rows == "drop" else None
        with step(f"Reading {self.events}"):
            events = load_events(self.events, customer_col=self.customer_col, timestamp_col=self.timestamp_col,
                                 date_format=self.date_format, bad_rows=self.bad_rows,  # type: ignore[arg-type]
                                 report_path=report)
        kinds = events["kind"].value_counts()
        console.print(f"Read {len(events):,} events of {events['customer_id'].nunique():,} customers: "
                      + ", ".join(f"{k} {n:,}" for k, n in kinds.items()), highlight=False, soft_wrap=True)
        say_dropped(report, "event row")
        customers = pd.Index(tx["customer_id"].unique())
        n, k, examples = unknown_customers(events, customers)
        if n:
            console.print(f"[yellow]{n:,} event(s) of {k:,} customer(s) without a transaction are not used "
                          f"(e.g. {', '.join(examples)})[/]", highlight=False, soft_wrap=True)
        return events.loc[events["customer_id"].isin(customers)]

    def day(self, tx) -> date:
        """The as-of day: the one asked for, or the last transaction day (and say so)."""
        if self.as_of is None:
            day = as_of_day(tx["timestamp"].max() if isinstance(tx, pd.DataFrame) else tx.last_day())
            console.print(f"As of {iso(day)} (the last transaction day; set --as-of to change).")
            return day
        return as_of_day(self.as_of)


def say_dropped(report: Path | None, what: str) -> None:
    """With ``--bad-rows drop``: how many bad rows (``what``) the report lists, and where it is."""
    if report is not None:
        dropped = pd.read_csv(report)["row"].nunique()
        console.print(f"[yellow]Dropped {dropped:,} bad {what}(s); the report is in {report}[/]")


def erased_customers(settings: Settings) -> frozenset[str]:
    """The customers erased by ``churnclv forget`` (or ``DELETE /customers/{id}``), whom scoring and training
    skip, on the single-process and the ``--dask`` paths alike. Nothing to read when the default SQLite store
    does not exist yet; a store that cannot be read is named in one line and stops the command."""
    from churnclv.contract.settings import sqlite_path

    database = sqlite_path(settings.campaign_store)
    if database is not None and not database.exists():
        return frozenset()
    from churnclv.campaigns import erased_ids, open_store

    return erased_ids(open_store(settings.campaign_store))


def without_erased(tx: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The transactions without those of customers erased (:func:`erased_customers`), and say how many."""
    erased = erased_customers(settings)
    if not erased:
        return tx
    out = tx["customer_id"].isin(list(erased))
    if out.any():
        console.print(f"Left out {int(out.sum()):,} transaction(s) of {tx.loc[out, 'customer_id'].nunique():,} "
                      "customer(s) erased by churnclv forget.", highlight=False)
    return tx.loc[~out]
