"""The score table's file: its metadata (as-of day, model) in the Parquet file itself, written atomically.

A score table written by ``churnclv score`` carries, in its Parquet schema metadata under the key
:data:`METADATA_KEY`, a JSON object of text values: ``as_of`` (the as-of day, YYYY-MM-DD),
``model_uri`` (the pinned ``models:/churn-clv/<version>``), ``model_version``, ``trained_as_of`` (the
model's own as-of day), ``horizon_days`` and ``interval_level`` (the central probability of the table's
intervals). :func:`read_score_metadata` is the one way to read them.
A CSV file has no place for them: :func:`write_scores` writes the rows only. An optional ``drift`` holds
the drift report of the scored customers against the model's training snapshot (:mod:`scoring.drift`), as
JSON text.

Every Parquet table ``churnclv score`` writes is also kept as ``$CHURNCLV_HOME/scores/<as_of>-v<version>.parquet``
(:func:`keep_dated_copy`): the past tables the monitor (``churnclv monitor``) compares with what happened.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnclv.contract.dates import iso
from churnclv.contract.errors import ChurnclvError
from churnclv.contract.files import write_atomic, write_table
from churnclv.scoring.intervals import VALUE_DRAWS_COLUMN

#: The Parquet schema metadata key of the score table's metadata.
METADATA_KEY = b"churnclv"
#: Where pandas kept ``DataFrame.attrs`` (score tables written before the metadata had its own key).
PANDAS_ATTRS = b"PANDAS_ATTRS"
#: The metadata's keys, in order.
METADATA_FIELDS = ("as_of", "model_uri", "model_version", "trained_as_of", "horizon_days", "interval_level")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: The monitor's latest verdict, a JSON file beside the served score table (``churnclv monitor`` writes it).
MONITOR_FILE = "monitor.json"


def score_metadata(bundle, *, as_of: date | str | pd.Timestamp) -> dict[str, str]:
    """The metadata of a score table scored by ``bundle`` (its ``metadata`` holds the registry's facts)."""
    meta = bundle.metadata
    return {
        "as_of": iso(as_of),
        "model_uri": str(meta.get("uri", "")),
        "model_version": str(meta.get("version", "")),
        "trained_as_of": str(meta.get("as_of", "")),
        "horizon_days": str(bundle.horizon_days),
        "interval_level": str(bundle.interval_level),
    }


def is_parquet(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def write_scores(table: pd.DataFrame, path: str | os.PathLike, metadata: dict[str, str]) -> Path:
    """Write a score table atomically: Parquet with ``metadata`` in its schema metadata, or CSV without."""
    if not is_parquet(path):  # a CSV keeps the rows' own figures (the values per parameter draw are Parquet's)
        return write_table(table.drop(columns=[VALUE_DRAWS_COLUMN], errors="ignore"), path)
    text = json.dumps({k: str(v) for k, v in metadata.items()}).encode()
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), METADATA_KEY: text})
    return write_atomic(path, lambda tmp: pq.write_table(arrow, tmp))


def read_score_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of the score table at ``path`` (see the module); {} for a CSV file or a table without.

    Tables written before the metadata had its own key are read from pandas' ``PANDAS_ATTRS``. Raises a
    ``ChurnclvError`` when the file cannot be read as Parquet.
    """
    if not is_parquet(path):
        return {}
    try:
        stored = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise ChurnclvError(f"{path}: cannot read the score table's metadata ({exc})") from None
    return metadata_of(stored, path)


def metadata_of(stored: dict[bytes, bytes], path: str | os.PathLike) -> dict[str, str]:
    """The score table's metadata from a Parquet schema's metadata (``{}`` when it has none)."""
    raw = stored.get(METADATA_KEY) or stored.get(PANDAS_ATTRS)
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError:
        raise ChurnclvError(f"{path}: the score table's metadata is not JSON") from None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def dated_name(metadata: dict[str, str]) -> str:
    """The file name a score table is kept under for the monitor: ``<as_of>-v<model_version>.parquet``."""
    return f"{metadata['as_of']}-v{metadata.get('model_version') or 'unknown'}.parquet"


def keep_dated_copy(path: str | os.PathLike, folder: str | os.PathLike, metadata: dict[str, str]) -> Path:
    """Copy the Parquet score table at ``path`` to ``folder/<as_of>-v<version>.parquet`` atomically (a later
    table of the same day and version replaces it); the copy's path (``path`` itself when it is that file).
    ``path`` may be a folder of Parquet parts (``score --dask``): the copy is then one file of all of them."""
    target = Path(folder) / dated_name(metadata)
    if target.exists() and target.resolve() == Path(path).resolve():
        return target
    if Path(path).is_dir():
        return write_atomic(target, lambda tmp: _join_parts(sorted(Path(path).glob("*.parquet")), tmp))
    return write_atomic(target, lambda tmp: shutil.copyfile(path, tmp))


def _join_parts(parts: list[Path], out: Path) -> None:
    """The Parquet files ``parts`` (one schema, the first one's metadata kept) as one file, a part at a time."""
    schema = pq.read_schema(parts[0])
    with pq.ParquetWriter(out, schema) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part).cast(schema))
