"""``--dask``: the commands on a Dask cluster write what the single-process ones write, and fail in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.scoring.scores import read_score_metadata
from churnclv.serving.table import load_score_table
from tests.churnclv.test_cli import _cli, _one_line_error
from tests.conftest import SEED_CSV


@pytest.mark.parametrize("path", ["no-such-folder", "*.nothing.parquet", str(SEED_CSV)])
def test_a_path_without_parquet_files_is_one_line_before_any_cluster_starts(path, tmp_path):
    message = _one_line_error(_cli("features", "-t", path, "--dask", "local", CHURNCLV_HOME=str(tmp_path)))
    assert message.startswith(f"error: no Parquet files at {path}: with --dask, -t is a Parquet dataset")


def test_a_malformed_scheduler_address_is_one_line(dataset, tmp_path):
    message = _one_line_error(_cli("features", "-t", str(dataset), "--dask", "tcp://host:port",
                                   CHURNCLV_HOME=str(tmp_path)))
    assert message.startswith("error: cannot reach a Dask scheduler at 'tcp://host:port'")


def test_drop_is_refused_with_dask_in_one_line(dataset, tmp_path):
    message = _one_line_error(_cli("features", "-t", str(dataset), "--dask", "local", "--bad-rows", "drop",
                                   CHURNCLV_HOME=str(tmp_path)))
    assert "--bad-rows drop is not available with --dask" in message


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line_naming_it(dataset, tmp_path):
    message = _one_line_error(_cli("train", "-t", str(dataset), "--dask", "tcp://127.0.0.1:1",
                                   CHURNCLV_HOME=str(tmp_path)))
    assert message.startswith("error: cannot reach a Dask scheduler at 'tcp://127.0.0.1:1' (Timed out")
    assert "--dask local" in message


@pytest.mark.slow
def test_features_and_scores_with_dask_local_equal_the_single_process_files(dataset, trained_home, tmp_path):
    env = {"CHURNCLV_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": trained_home.tracking_uri}
    proc = _cli("features", "-t", str(dataset), "--dask", "local", "--as-of", "2025-12-31", **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dashboard http://" in proc.stderr and "Read 25,057 transactions of 4,000 customers" in proc.stderr
    single = _cli("features", "-t", str(SEED_CSV), "--as-of", "2025-12-31", "--out", str(tmp_path / "f.parquet"), **env)
    assert single.returncode == 0, single.stderr[-3000:]
    got = pd.read_parquet(tmp_path / "out" / "features.parquet").sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, pd.read_parquet(tmp_path / "f.parquet"))

    proc = _cli("score", "-t", str(dataset), "--dask", "local", "--explain", **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "scores" / "latest"
    assert f"Wrote 4,000 scores to {folder} (" in proc.stderr
    dated = tmp_path / "scores" / "2025-12-31-v1.parquet"
    assert f"Kept a copy for the monitor (churnclv monitor): {dated}" in proc.stderr
    scores = pd.read_parquet(folder).sort_values("customer_id", ignore_index=True)
    # what the single-process command writes: the same table, the values per draw of its top customers (all 4,000
    # here), the drift report in the metadata, and the dated copy churnclv monitor reads
    alone = {**env, "CHURNCLV_HOME": str(tmp_path / "alone")}
    single_proc = _cli("score", "-t", str(SEED_CSV), "--explain", **alone)
    assert single_proc.returncode == 0, single_proc.stderr[-3000:]
    single = pd.read_parquet(tmp_path / "alone" / "scores" / "latest.parquet")
    assert scores["value_at_risk_draws"].notna().all()
    assert_same_table(scores, single)
    meta = read_score_metadata(next(folder.glob("*.parquet")))
    assert meta == read_score_metadata(tmp_path / "alone" / "scores" / "latest.parquet") and "drift" in meta
    assert read_score_metadata(dated) == meta
    served = load_score_table(folder)  # the service reads the folder's values per draw: membership on a plan
    assert served.draws is not None and served.draws.kept == 4000 and served.attrs["drift"] == meta["drift"]
    assert_same_table(pd.read_parquet(dated).sort_values("customer_id", ignore_index=True),
                      pd.read_parquet(tmp_path / "alone" / "scores" / dated.name))


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal score tables: every column to 1e-12, the values per parameter draw to float32's precision."""
    draws = "value_at_risk_draws"
    pd.testing.assert_frame_equal(got.drop(columns=draws), want.drop(columns=draws), check_exact=False, rtol=1e-12)
    assert (got[draws].isna() == want[draws].isna()).all()
    kept = got[draws].notna()
    np.testing.assert_allclose(np.stack(got.loc[kept, draws]), np.stack(want.loc[kept, draws]), rtol=1e-6)


@pytest.mark.slow
def test_bad_rows_on_the_cluster_are_named_without_a_traceback(tmp_path, seed_transactions):
    folder = tmp_path / "tx"
    folder.mkdir()
    as_text = seed_transactions.astype({"amount": "str"})
    as_text.iloc[:500].to_parquet(folder / "a.parquet", index=False)
    bad = as_text.iloc[500:600].reset_index(drop=True)
    bad.loc[[3, 7], "amount"] = "n/a"
    bad.to_parquet(folder / "b.parquet", index=False)
    proc = _cli("features", "-t", str(folder), "--dask", "local", CHURNCLV_HOME=str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert "column 'amount': 2 row(s) are not finite numbers (e.g. row 4: 'n/a', row 8: 'n/a')" in proc.stderr
    assert not (tmp_path / "out").exists()
