"""``churnclv forget`` then ``features --dask local``: the erased customer is left out on the cluster too."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.churnclv.test_cli import _cli


@pytest.mark.slow
def test_a_forgotten_customer_is_not_read_on_the_cluster(dataset, seed_transactions, tmp_path):
    env = {"CHURNCLV_HOME": str(tmp_path)}
    forgotten = "C00042"
    rows = int((seed_transactions["customer_id"] == forgotten).sum())
    proc = _cli("forget", forgotten, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _cli("features", "-t", str(dataset), "--dask", "local", "--as-of", "2025-12-31", **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Left out {rows:,} transaction(s) of 1 customer(s) erased by churnclv forget." in proc.stdout + proc.stderr
    assert "of 3,999 customers" in proc.stdout + proc.stderr
    built = pd.read_parquet(tmp_path / "out" / "features.parquet")
    assert len(built) == 3_999 and forgotten not in set(built["customer_id"])
