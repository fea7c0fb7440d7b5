"""Atomic writes: a file is replaced whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from contract.errors import ChurnclvError


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A failure leaves any earlier file at ``path`` untouched and no partial file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = False) -> Path:
    """Write a frame atomically as CSV or Parquet, chosen by the extension of ``path``."""
    suffix = "".join(Path(path).suffixes[-2:]).lower()
    if suffix.endswith((".parquet", ".pq")):
        return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=index))
    if suffix.endswith((".csv", ".csv.gz")):
        compression = "gzip" if suffix.endswith(".gz") else None
        return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=index, compression=compression))
    raise ChurnclvError(f"{path}: unknown output type; use .csv, .csv.gz or .parquet")
