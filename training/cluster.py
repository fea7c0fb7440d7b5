"""The Dask plumbing of ``--dask``: a cluster, a Parquet dataset shuffled by customer, progress, dataset writes.

Every feature depends only on one customer's own rows (DESIGN principle 5), so once the rows of each
customer sit in one partition (:func:`read_transactions` shuffles by ``customer_id``) the same
functions run on every partition: :func:`features.build_features` (:func:`features_by_partition`),
the bundle's :func:`scoring.bundle.score_table` (:func:`scores_by_partition`, its fitted parameters
and segment bars fixed at training), and training's per-customer work
(:class:`training.partitioned.PartitionedLog`). The partitions together equal the single-process
tables. Distribution is Dask's own: ``distributed`` schedules, shuffles and shows progress (its text
bar and its dashboard); nothing here moves data by hand.

It lives in ``training`` (which may import ``features`` and ``scoring``) rather than beside them: the
registered model and the Bento ship ``features/`` and ``scoring/``, and neither needs Dask.
Imported by the ``--dask`` commands only.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq
from distributed import Client, LocalCluster, progress

from churnclv.campaigns.suppress import drop_suppressed
from churnclv.contract import ChurnclvError
from churnclv.contract.dates import AsOf
from churnclv.features import TransactionsError, amount_factors, build_features, validate_transactions
from churnclv.scoring.bundle import ChurnCLVBundle, score_table
from churnclv.scoring.scores import METADATA_KEY

#: ``--dask local``: a cluster of this many single-threaded worker processes on this machine.
LOCAL_WORKERS = 2
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
#: How long a client waits for a scheduler at an address before it gives up.
CONNECT_TIMEOUT = "10s"


@contextmanager
def cluster(address: str, *, dashboard_address: str | None = ":8787") -> Iterator[Client]:
    """A ``distributed.Client`` of the scheduler at ``address``, or of a ``LocalCluster`` of
    :data:`LOCAL_WORKERS` worker processes for ``"local"``; closed on exit.

    An unreachable scheduler is a :class:`ChurnclvError` naming the address (one line).
    """
    if address == "local":
        # silence_logs: a task's error reaches the command as its exception; the workers need not log it too
        with (LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1, processes=True, silence_logs=logging.CRITICAL,
                           dashboard_address=dashboard_address) as local, Client(local) as client):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ChurnclvError(f"cannot reach a Dask scheduler at {address!r} ({first}); pass --dask local for a "
                            "cluster on this machine, or the address a scheduler prints (tcp://HOST:8786)") from None
    with client:
        yield client


def compute(client: Client, *collections: Any) -> list:
    """Compute Dask collections on the cluster with Dask's own progress bar (on stderr); their results."""
    futures = client.compute(list(collections))
    with redirect_stdout(sys.stderr):
        progress(futures)
    return client.gather(futures)


def persist(client: Client, collection: Any) -> Any:
    """Keep a collection in the cluster's memory (computed once, with the progress bar) and return it."""
    kept = client.persist(collection)
    with redirect_stdout(sys.stderr):
        progress(kept)
    return kept


def _dataset_files(path: str) -> list[str]:
    """The local Parquet files of a dataset path (a folder or a glob); remote URLs are left to Dask."""
    if "://" in path:
        return [path]
    if any(ch in path for ch in "*?["):
        return sorted(p for p in glob.glob(path) if Path(p).suffix.lower() in PARQUET_SUFFIXES)
    target = Path(path)
    if target.is_dir():
        return sorted(str(p) for p in target.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES)
    return [str(target)] if target.is_file() and target.suffix.lower() in PARQUET_SUFFIXES else []


def _canonical(part: pd.DataFrame, columns: dict[str, str], date_format: str | None, where: str,
               meta: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
    """One input partition validated against the transaction contract (the message says which partition)."""
    number = partition_info["number"] if partition_info else 0
    if part.empty:  # an empty file is no error here: the log as a whole is checked for rows
        return meta
    try:
        return validate_transactions(part, date_format=date_format, **columns)[0]
    except TransactionsError as exc:
        raise TransactionsError(f"{where}, partition {number} (rows counted within it): {exc}") from None


def _whole_customers(part: pd.DataFrame, where: str) -> pd.DataFrame:
    """A shuffled partition (whole customers, rows from any file) checked against the contract again: it
    catches identical rows of one order that came from two files (a file given twice)."""
    if part.empty:
        return part
    try:
        return validate_transactions(part)[0]
    except TransactionsError as exc:
        raise TransactionsError(f"{where}, after shuffling by customer (rows from different files; rows counted "
                                f"within a partition): {exc}") from None


def read_transactions(path: str | os.PathLike, *, npartitions: int | None = None, min_partitions: int = 1,
                      customer_col: str = "customer_id",
                      timestamp_col: str = "timestamp", amount_col: str = "amount",
                      date_format: str | None = None) -> dd.DataFrame:
    """A Parquet dataset (a folder, a glob such as ``tx/2025-*.parquet``, or a file) as canonical
    transactions, validated partition by partition and shuffled so that each customer's rows are in one
    partition (``npartitions`` of them; default: as many as the input's, at least ``min_partitions``).

    Lazy: nothing is read until it is computed. Bad rows raise :class:`TransactionsError` at compute time,
    naming the partition, the column, the count and examples.
    """
    where = str(path)
    check_dataset(where)
    try:
        raw = dd.read_parquet(where)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TransactionsError(f"{where} is not a readable Parquet dataset: {first}") from None
    columns = {"customer_col": customer_col, "timestamp_col": timestamp_col, "amount_col": amount_col}
    meta = validate_transactions(_example(list(raw.columns), columns), **columns)[0].iloc[:0]
    canonical = raw.map_partitions(_canonical, columns, date_format, where, meta, meta=meta)
    shuffled = canonical.shuffle(on="customer_id", npartitions=npartitions or max(canonical.npartitions, min_partitions))
    return shuffled.map_partitions(_whole_customers, where, meta=meta)


def _without(part: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    return drop_suppressed(part, ids)[0]


def without_customers(transactions: dd.DataFrame, ids: Collection[str]) -> dd.DataFrame:
    """The log without the rows of the customers ``ids`` (erased ones: ``campaigns.erased_ids``), partition
    by partition with :func:`campaigns.drop_suppressed`, the rule every list of customers follows."""
    if not ids:
        return transactions
    return transactions.map_partitions(_without, sorted(ids), meta=transactions._meta)


def _present_part(part: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    mine = part["customer_id"].astype("str").isin(ids)
    return pd.DataFrame({"rows": [int(mine.sum())], "customers": [part.loc[mine, "customer_id"].nunique()]})


def customers_present(transactions: dd.DataFrame, ids: Collection[str], client: Client | None) -> tuple[int, int]:
    """How many rows and customers of ``ids`` the log holds (each customer in one partition). ``client``
    None: Dask's default scheduler (a local one when no cluster is connected)."""
    if not ids:
        return 0, 0
    meta = pd.DataFrame({"rows": pd.Series(dtype="int64"), "customers": pd.Series(dtype="int64")})
    counts = transactions.map_partitions(_present_part, sorted(ids), meta=meta)
    (parts,) = compute(client, counts) if client is not None else (counts.compute(),)
    return int(parts["rows"].sum()), int(parts["customers"].sum())


def _example(names: list[str], columns: dict[str, str]) -> pd.DataFrame:
    """One valid row with the input's columns, to learn the canonical frame's columns and dtypes from (Dask's
    ``meta``); a missing required column fails here, before anything is read, with the usual message."""
    amount = amount_factors(columns["amount_col"], names) or (columns["amount_col"],)
    row = dict.fromkeys(names, "x") | {"quantity": "1"} | dict.fromkeys(amount, "1")
    row |= {columns["customer_col"]: "c", columns["timestamp_col"]: "2000-01-01"}
    return pd.DataFrame({name: [row[name]] for name in names})


def _describe_part(part: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"rows": [len(part)], "customers": [part["customer_id"].nunique()],
                         "first": [part["timestamp"].min()], "last": [part["timestamp"].max()]})


def describe(transactions: dd.DataFrame, client: Client) -> dict:
    """Rows, customers, first and last timestamp of a log shuffled by customer (each customer in one partition)."""
    meta = pd.DataFrame({"rows": pd.Series(dtype="int64"), "customers": pd.Series(dtype="int64"),
                         "first": pd.Series(dtype="datetime64[ns]"), "last": pd.Series(dtype="datetime64[ns]")})
    (parts,) = compute(client, transactions.map_partitions(_describe_part, meta=meta))
    return {"rows": int(parts["rows"].sum()), "customers": int(parts["customers"].sum()),
            "first": parts["first"].min(), "last": parts["last"].max()}


def check_dataset(path: str | os.PathLike) -> None:
    """Refuse, before any cluster starts, a dataset path that holds no Parquet file."""
    if not _dataset_files(str(path)):
        raise TransactionsError(f"no Parquet files at {path}: with --dask, -t is a Parquet dataset (a folder of "
                                ".parquet files, a glob such as 'tx/*.parquet', or one .parquet file)")


def _features_partition(part: pd.DataFrame, as_of: AsOf) -> pd.DataFrame:
    return build_features(part, as_of=as_of).reset_index()


def features_by_partition(transactions: dd.DataFrame, *, as_of: AsOf) -> dd.DataFrame:
    """:func:`build_features` on every customer partition (``customer_id`` a column, each partition sorted)."""
    meta = build_features(transactions._meta, as_of=as_of).reset_index()
    return transactions.map_partitions(_features_partition, as_of, meta=meta)


def write_dataset(frame: dd.DataFrame, path: str | os.PathLike, client: Client, *,
                  custom_metadata: dict[bytes, bytes] | None = None, schema: Any = "infer") -> Path:
    """Write a partitioned Parquet dataset (a folder of ``part.N.parquet``) atomically.

    The parts are written beside ``path`` and the folder renamed into place, so a failed run leaves an
    earlier dataset (or file) at ``path`` intact.
    """
    target = Path(path).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        compute(client, frame.to_parquet(str(staging), write_index=False, custom_metadata=custom_metadata,
                                         schema=schema, compute=False))
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _swap_in(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists():
        old.unlink()


def dataset_rows(path: str | os.PathLike) -> int:
    """Rows of a written Parquet dataset, from its parts' footers."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in _dataset_files(str(path)))


def to_pandas(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Gathered partitions as one frame (empty partitions dropped)."""
    kept = [f for f in frames if len(f)] or list(frames[:1])
    return pd.concat(kept) if kept else pd.DataFrame()


def _scored_example(as_of: AsOf) -> pd.DataFrame:
    """A made-up customer's one purchase on the as-of day: scored to learn the table's columns (Dask's ``meta``)."""
    return pd.DataFrame({"customer_id": pd.array(["example"], dtype="str"),
                         "timestamp": pd.Series([pd.Timestamp(as_of)], dtype="datetime64[ns]"), "amount": [1.0]})


def _score_partition(part: pd.DataFrame, bundle: ChurnCLVBundle, as_of: AsOf, explain: bool) -> pd.DataFrame:
    return score_table(bundle, part, as_of=as_of, explain=explain)


def scores_by_partition(bundle: ChurnCLVBundle, transactions: dd.DataFrame, *, as_of: AsOf,
                        explain: bool = False) -> dd.DataFrame:
    """:func:`score_table` of every customer partition (one row per customer, ``customer_id`` a column)."""
    meta = score_table(bundle, _scored_example(as_of), as_of=as_of, explain=explain).iloc[:0]
    return transactions.map_partitions(_score_partition, bundle, as_of, explain, meta=meta)


def write_scores_dataset(scores: dd.DataFrame, path: str | os.PathLike, metadata: dict[str, str],
                         client: Client, *, schema: Any = "infer") -> Path:
    """Write the partitioned score table atomically, ``metadata`` (:func:`scoring.scores.score_metadata`) in
    every part's Parquet schema under the key :func:`scoring.scores.read_score_metadata` reads (``schema``: the
    parts' Arrow schema when Dask cannot infer it, see ``training.partitioned.ClusterScores``)."""
    text = json.dumps({k: str(v) for k, v in metadata.items()}).encode()
    return write_dataset(scores, path, client, custom_metadata={METADATA_KEY: text}, schema=schema)
