"""The command line writes what it says, explains itself, and fails without a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from churnclv.cli import app
from churnclv.options import parse_day
from churnclv.scoring.scores import read_score_metadata
from tests.conftest import SEED_CSV

ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


def test_features_writes_one_row_per_customer_with_the_id_as_a_column(tmp_path):
    out = tmp_path / "features.csv"
    result = runner.invoke(app, ["features", "-t", str(SEED_CSV), "--as-of", "2025-06-30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"customer_id": str})
    raw = pd.read_csv(SEED_CSV, parse_dates=["timestamp"])
    buyers = raw.loc[(raw["timestamp"] < "2025-07-01") & (raw["amount"] >= 0), "customer_id"].nunique()
    assert len(table) == buyers
    assert {"customer_id", "frequency", "recency", "T", "monetary_value", "cohort"} <= set(table.columns)


def test_features_of_an_order_line_export_equal_those_of_its_amounts(tmp_path):
    """The seed log written as an order-line export (quantity, unit price, US dates, other names) gives the same
    features with ``--amount-col 'Quantity*Price'`` as the log of amounts does."""
    raw = pd.read_csv(SEED_CSV, dtype=str)
    quantity = pd.to_numeric(raw["quantity"]).clip(lower=1)
    lines = pd.DataFrame({"Invoice": raw["order_id"], "Quantity": quantity,
                          "InvoiceDate": pd.to_datetime(raw["timestamp"]).dt.strftime("%m/%d/%Y %H:%M"),
                          "Price": pd.to_numeric(raw["amount"]) / quantity, "Customer ID": raw["customer_id"]})
    lines.to_csv(tmp_path / "lines.csv", index=False)
    mapped = ["--customer-col", "Customer ID", "--timestamp-col", "InvoiceDate", "--amount-col", "Quantity*Price",
              "--date-format", "%m/%d/%Y %H:%M"]
    for source, extra, out in ((tmp_path / "lines.csv", mapped, "lines.csv"), (SEED_CSV, [], "amounts.csv")):
        result = runner.invoke(app, ["features", "-t", str(source), *extra, "--as-of", "2025-06-30",
                                     "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    read = lambda name: pd.read_csv(tmp_path / name, dtype={"customer_id": str}).set_index("customer_id")
    ours, theirs = read("lines.csv"), read("amounts.csv")
    known = [c for c in ours.columns if ours[c].notna().any()]  # not those of the categories it does not carry
    assert len(ours) > 100 and {"frequency", "recency", "T", "monetary_value", "spend_90d"} <= set(known)
    pd.testing.assert_frame_equal(ours[known], theirs[known], rtol=1e-9)


def test_features_says_which_as_of_it_chose(tmp_path):
    result = runner.invoke(app, ["features", "-t", "cdnow", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 0, result.output
    assert "As of 1998-06-30 (the last transaction day" in result.output
    assert len(pd.read_parquet(tmp_path / "f.parquet")) == 23_570


def test_cohorts_writes_the_table_and_a_png(tmp_path):
    out = tmp_path / "cohorts.csv"
    result = runner.invoke(app, ["cohorts", "-t", "cdnow", "--as-of", "1997-12-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert table["cohort"].tolist() == ["1997-01", "1997-02", "1997-03"]  # CDNOW acquired customers in Q1 1997
    assert (tmp_path / "cohorts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_fails_with_a_message_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,timestamp,amount\nA,2024-01-01,1\nB,yesterday,2\n")
    out = tmp_path / "f.csv"
    out.write_text("earlier output\n")
    proc = subprocess.run([sys.executable, "-m", "churnclv", "features", "-t", str(bad), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "column 'timestamp': 1 row(s) do not parse as dates (e.g. row 2: 'yesterday')" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert out.read_text() == "earlier output\n"


def test_bad_rows_drop_writes_the_report(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,timestamp,amount\nA,2024-01-01,1\nB,yesterday,2\nA,2024-02-01,3\n")
    report = tmp_path / "rejected.csv"
    result = runner.invoke(app, ["features", "-t", str(bad), "--bad-rows", "drop", "--rejected", str(report),
                                 "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 0, result.output
    assert "Dropped 1 bad row(s)" in result.output
    assert pd.read_csv(report)["value"].tolist() == ["yesterday"]


def test_a_bad_as_of_is_a_usage_error():
    result = runner.invoke(app, ["features", "-t", "cdnow", "--as-of", "30/09/1997"])
    assert result.exit_code == 2
    assert "not a date like 1997-09-30" in result.output


@pytest.fixture()
def short_log(tmp_path):
    """The seed data cut to nine months (2025-04-01 .. 2025-12-31): a young shop."""
    raw = pd.read_csv(SEED_CSV)
    young = raw.loc[raw["timestamp"] >= "2025-04-01"]
    path = tmp_path / "young.csv"
    young.to_csv(path, index=False)
    return path


@pytest.fixture()
def fresh_home(tmp_path, monkeypatch):
    """An empty CHURNCLV_HOME and its embedded store (``mlflow.set_tracking_uri`` in an earlier test of this
    process leaves MLFLOW_TRACKING_URI in the environment)."""
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_train_on_a_short_log_uses_the_cutoffs_that_fit_and_says_how_many(short_log, fresh_home):
    result = runner.invoke(app, ["train", "-t", str(short_log), "--step-days", "28"])
    assert result.exit_code == 0, result.output
    # every 28 days back from 2025-10-02 (as-of minus the horizon) while 56 days of history remain
    assert "5 stacked cutoffs (2025-06-12 .. 2025-10-02)" in " ".join(result.output.split())
    assert "registered as churn-clv v1" in result.output


def test_train_on_a_young_log_fits_the_btyd_model_alone(short_log, fresh_home):
    """122 days of history: too short for stacked snapshots (2 x 90 + 56 days), long enough for BG/NBD."""
    result = runner.invoke(app, ["train", "-t", str(short_log), "--as-of", "2025-08-01"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "BG/NBD alone for churn and purchases at 2025-08-01" in output
    assert "no stacked cutoffs (BG/NBD alone)" in output and "registered as churn-clv v" in output


def test_train_without_enough_history_names_the_failed_gate(short_log, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "churnclv", "train", "-t", str(short_log), "--as-of", "2025-06-15"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "CHURNCLV_HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "1 gate(s) failed; nothing was fitted" in message
    assert "days of history: 75, needs >= 118" in message and "Traceback" not in message


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path):
    home = tmp_path / "a-file"
    home.write_text("")
    env = {**os.environ, "CHURNCLV_HOME": str(home), "CHURNCLV_REFRESH_SECONDS": "often"}
    proc = subprocess.run([sys.executable, "-m", "churnclv", "features", "-t", str(SEED_CSV)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith(f"error: CHURNCLV_HOME={str(home)!r} is not allowed (not a directory)")
    assert "CHURNCLV_REFRESH_SECONDS='often' is not allowed" in proc.stderr


def _cli(*args: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "churnclv", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


@pytest.mark.parametrize("model", ["./model", "/tmp/some/model", "file:///tmp/model", "runs:/0123abcd/model"])
def test_serve_refuses_a_model_that_is_not_registered_in_one_line(model, tmp_path):
    message = _one_line_error(_cli("serve", "--open", "--model", model, CHURNCLV_HOME=str(tmp_path)))
    assert f"--model {model!r} is " in message and "not a registered model" in message


def test_serve_refuses_a_malformed_registered_model_uri_in_one_line(tmp_path):
    message = _one_line_error(_cli("serve", "--open", "--model", "models:/churn-clv", CHURNCLV_HOME=str(tmp_path)))
    assert "'models:/churn-clv' is not a registered model URI" in message


def test_score_into_a_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "scores.parquet"
    message = _one_line_error(_cli("score", "-t", str(SEED_CSV), "--out", str(out), CHURNCLV_HOME=str(tmp_path)))
    assert f"cannot write {out}: {tmp_path / 'a-file'} is a file, not a folder" in message


def test_an_unreachable_tracking_server_is_named_not_train_one_first(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    message = _one_line_error(_cli("score", "-t", str(SEED_CSV), CHURNCLV_HOME=str(tmp_path), MLFLOW_TRACKING_URI=uri))
    assert f"the MLflow tracking store at {uri} is unreachable" in message and "train one first" not in message


def test_as_of_is_a_date_from_the_command_line():
    assert parse_day("2025-06-30") == date(2025, 6, 30) and parse_day(None) is None
    with pytest.raises(typer.BadParameter, match="not a date like 1997-09-30"):
        parse_day("30/06/2025")


def test_score_writes_its_metadata_into_the_parquet_file(trained_home, tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNCLV_HOME", str(trained_home.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score", "-t", str(SEED_CSV), "--as-of", "2025-12-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metadata = read_score_metadata(out)
    drift = json.loads(metadata.pop("drift"))  # scoring.drift: the scored customers against the training snapshot
    assert metadata == {"as_of": "2025-12-31", "model_uri": f"models:/churn-clv/{trained_home.version}",
                        "model_version": trained_home.version, "trained_as_of": "2025-12-31", "horizon_days": "90",
                        "interval_level": "0.8"}
    assert drift["psi_max"] == 0.0 and drift["warning"] is None  # the very customers the model was trained on
    csv = runner.invoke(app, ["score", "-t", str(SEED_CSV), "--as-of", "2025-12-31", "--out", str(tmp_path / "s.csv")])
    assert csv.exit_code == 0, csv.output
    assert "a CSV file has no metadata" in " ".join(csv.output.split())


def test_train_keeps_artifacts_with_the_store_fails_abandoned_runs_and_keeps_mlflow_quiet(short_log, tmp_path):
    """MLFLOW_TRACKING_URI=sqlite:///... : artifacts beside the database, nothing in the current directory;
    a run left RUNNING by a killed training is marked FAILED (one line); no MLflow chatter."""
    from churnclv.scoring.registry import connect
    from churnclv.training.registry import EXPERIMENT_PREFIX, HOST_TAG, PID_TAG, process_tags

    store, cwd = tmp_path / "store", tmp_path / "cwd"
    cwd.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = connect(uri, store / "artifacts")
    experiment = client.create_experiment(f"{EXPERIMENT_PREFIX}killed", str(store / "artifacts" / "killed"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = client.create_run(experiment, tags={PID_TAG: gone.stdout.strip(), HOST_TAG: process_tags()[HOST_TAG]})
    proc = _cli("train", "-t", str(short_log), "--step-days", "28", "--cutoffs", "2", cwd=cwd,
                CHURNCLV_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=uri)
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert "Successfully registered model" not in output and "Created version" not in output
    assert "INFO mlflow" not in output
    assert f"Marked 1 MLflow run(s) FAILED: the training that logged them is gone ({killed.info.run_id})" in \
        " ".join(output.split())
    assert client.get_run(killed.info.run_id).info.status == "FAILED"
    assert list(cwd.iterdir()) == []  # no ./mlruns, no ./mlflow.db
    run_id = next(line.split()[2].rstrip(",") for line in output.splitlines() if line.startswith("MLflow run "))
    assert client.get_run(run_id).info.artifact_uri.startswith(str(store / "artifacts"))
