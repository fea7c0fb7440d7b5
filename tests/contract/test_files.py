"""Atomic writes: whole files with the usual permissions, and no temporary files left behind for ever."""

from __future__ import annotations

import os
import stat
import time

import pandas as pd

from churnclv.contract.files import ORPHAN_SECONDS, write_atomic, write_table


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_table(pd.DataFrame({"a": [1]}), tmp_path / "scores.parquet")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_orphaned_temporary_files_of_killed_writers_are_removed(tmp_path):
    target = tmp_path / "latest.parquet"
    old = tmp_path / ".latest.parquet.abc123.tmp"
    fresh = tmp_path / ".latest.parquet.def456.tmp"  # perhaps a writer at work right now: kept
    other = tmp_path / ".other.parquet.abc123.tmp"  # another file's: not ours to judge
    for f in (old, fresh, other):
        f.write_bytes(b"partial")
    past = time.time() - ORPHAN_SECONDS - 60
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    write_atomic(target, lambda tmp: tmp.write_bytes(b"whole"))
    assert target.read_bytes() == b"whole"
    assert not old.exists() and fresh.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, fresh.name, other.name])
