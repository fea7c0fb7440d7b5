"""Atomic writes: a file is replaced whole or not at all."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from churnclv.contract.errors import ChurnclvError

#: A temporary file of an earlier write this old was left by a killed process: it is removed.
ORPHAN_SECONDS = 3600


def _umask() -> int:
    """The process umask, read without changing it (Linux; 0o022 elsewhere)."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("Umask:"))
        return int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError):
        return 0o022


def remove_orphans(target: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files of earlier writes of ``target`` older than :data:`ORPHAN_SECONDS`."""
    cutoff = (time.time() if now is None else now) - ORPHAN_SECONDS
    removed = []
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process removed it first
            continue
    return removed


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A failure leaves any earlier file at ``path`` untouched and no partial file behind; temporary files
    that killed writers left are removed. The file gets the usual permissions (0666 less the umask,
    e.g. 0644), so that a service running as another user can read what a scheduler wrote.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
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
