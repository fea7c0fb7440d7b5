"""``--dask``: the commands' Dask paths: connect (or start a local cluster), read the log there, and
write features and scores as folders of Parquet parts. The cluster closes when the command ends
(:func:`churnclv.context.closes_resources`)."""

from __future__ import annotations

import logging
import warnings
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from churnclv.context import check_writable, console, resources, step
from churnclv.contract.errors import ChurnclvError

if TYPE_CHECKING:
    from churnclv.source import Source


def quiet_dask() -> None:
    """Dask's INFO lines narrate every start and stop; p2p shuffle notices; workers killed at exit."""
    logging.getLogger("distributed").setLevel(logging.WARNING)
    for chatty in ("distributed.shuffle", "distributed.nanny"):
        logging.getLogger(chatty).setLevel(logging.ERROR)


def connect(address: str):
    """A client of the cluster at ``address`` (or of a new local one), closed when the command ends."""
    from churnclv.training.cluster import cluster

    quiet_dask()
    with (step("Starting a local Dask cluster" if address == "local" else f"Connecting to {address}"),
          warnings.catch_warnings()):
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        client = resources().enter_context(cluster(address))  # the dashboard moves to a free port: its link is printed
    console.print(f"Dask: {worker_threads(client)} worker thread(s) at {client.scheduler.address}; dashboard "
                  f"{client.dashboard_link}", highlight=False, soft_wrap=True)
    return client


def worker_threads(client) -> int:
    """How many threads the cluster's workers run in all."""
    return sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())


def read_on_cluster(source: Source, address: str, *, erased: frozenset[str] = frozenset()):
    """``--dask``: read the Parquet dataset on the cluster, validated and shuffled by customer, without the
    ``erased`` customers' rows (as the single-process read), and keep it in the cluster's memory (a
    ``training.partitioned.PartitionedLog``); Dask's progress bar and dashboard show it."""
    from churnclv.training.cluster import (
        check_dataset,
        customers_present,
        describe,
        persist,
        read_transactions,
        without_customers,
    )
    from churnclv.training.partitioned import PartitionedLog

    if source.bad_rows != "fail":
        raise ChurnclvError("--bad-rows drop is not available with --dask: fix the rows (the error names them), "
                            "or drop them with a run without --dask")
    check_dataset(source.transactions)
    client = connect(address)
    threads = worker_threads(client)
    console.print(f"Reading {source.transactions} and shuffling it by customer:", highlight=False)
    tx = persist(client, read_transactions(
        source.transactions, min_partitions=2 * threads, customer_col=source.customer_col,
        timestamp_col=source.timestamp_col, amount_col=source.amount_col, date_format=source.date_format))
    rows, customers = customers_present(tx, erased, client)
    if rows:
        tx = persist(client, without_customers(tx, erased))
        console.print(f"Left out {rows:,} transaction(s) of {customers:,} customer(s) erased by churnclv forget.",
                      highlight=False)
    about = describe(tx, client)
    console.print(f"Read {about['rows']:,} transactions of {about['customers']:,} customers ({about['first']:%Y-%m-%d} "
                  f"to {about['last']:%Y-%m-%d}) into {tx.npartitions} partitions.")
    return PartitionedLog(tx, client)


def features_on_cluster(log, *, day: date, out: Path) -> None:
    """``features --dask``: ``build_features`` on every customer partition, written as a folder of Parquet parts."""
    from churnclv.features.build import FEATURE_COLUMNS
    from churnclv.training.cluster import dataset_rows, features_by_partition, write_dataset

    check_writable(out)
    console.print("Building features on the cluster:")
    path = write_dataset(features_by_partition(log.transactions, as_of=day), out, log.client)
    console.print(f"Wrote {dataset_rows(path):,} customers x {len(FEATURE_COLUMNS)} features to [bold]{path}[/] "
                  f"({log.transactions.npartitions} Parquet parts)", soft_wrap=True)


def score_on_cluster(bundle, log, *, day: date, out: Path, explain: bool, kept_in: Path) -> None:
    """``score --dask``: the bundle on every customer partition, written as a folder of Parquet parts, each
    carrying the score table's metadata (the as-of day, the model, the drift report), with the values per
    parameter draw of the table's top customers and, as ``score`` does, a dated one-file copy in ``kept_in``
    for ``churnclv monitor`` (:func:`training.partitioned.score_partitions`)."""
    import json

    import pandas as pd

    from churnclv.models import tell_kept_and_drift
    from churnclv.scoring.scores import keep_dated_copy, score_metadata
    from churnclv.training.cluster import write_scores_dataset
    from churnclv.training.partitioned import score_partitions

    console.print(f"Scoring with {bundle.metadata.get('uri', 'the model')} on the cluster:", highlight=False)
    scored = score_partitions(bundle, log.transactions, log.client, as_of=day, explain=explain)
    metadata = score_metadata(bundle, as_of=day) | ({"drift": json.dumps(scored.drift)} if scored.drift else {})
    try:
        path = write_scores_dataset(scored.tables, out, metadata, log.client, schema=scored.schema)
        kept = keep_dated_copy(path, kept_in, metadata)
    except OSError as exc:
        raise ChurnclvError(f"cannot write {out}: {exc.strerror or exc}") from None
    counts = pd.read_parquet(path, columns=["segment"])["segment"].value_counts()
    console.print(f"Wrote {int(counts.sum()):,} scores to [bold]{path}[/] ({log.transactions.npartitions} Parquet "
                  f"parts; model v{metadata['model_version']}, as of {metadata['as_of']})", soft_wrap=True)
    console.print("Segments: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    tell_kept_and_drift(path, kept, scored.drift)
    console.print(f"Serve them with: churnclv serve --scores {path}", highlight=False, soft_wrap=True)
