"""``--events`` on the command line: train shows the backtest with and without them, score uses them, and bad
event rows are named before anything is written."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnclv.cli import app
from churnclv.seeds.events import make_seed_events
from tests.conftest import SEED_CSV

runner = CliRunner()


@pytest.fixture()
def events_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "events.csv"
    make_seed_events().to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_train_and_score_with_events(events_csv, tmp_path):
    trained = runner.invoke(app, ["train", "-t", str(SEED_CSV), "--events", str(events_csv), "--cutoffs", "4"])
    assert trained.exit_code == 0, trained.output
    text = " ".join(trained.output.split())
    sent = (pd.read_csv(events_csv)["kind"] == "email_sent").sum()
    assert "without events" in text and f"email_sent {sent:,}" in text
    nps = pd.read_csv(events_csv).query("kind == 'nps'")
    row = f"│ nps │ {len(nps):,} │ {nps['customer_id'].nunique():,} │ {nps['customer_id'].nunique() / 4000:.0%} │"
    assert "Events the models see (as of 2025-12-31)" in text and row in text
    out = tmp_path / "scores.parquet"
    scored = runner.invoke(app, ["score", "-t", str(SEED_CSV), "--events", str(events_csv), "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    without = runner.invoke(app, ["score", "-t", str(SEED_CSV), "--out", str(tmp_path / "plain.parquet")])
    assert without.exit_code == 0 and "trained with events" in without.output
    unsubscribed = pd.read_csv(events_csv).query("kind == 'unsubscribe'")["customer_id"].nunique()
    assert f"Suppressed {unsubscribed:,} customer(s) who unsubscribed ({unsubscribed:,} new on the list)" in \
        " ".join(scored.output.split())
    churn = pd.read_parquet(out).set_index("customer_id")["churn_probability"]
    plain = pd.read_parquet(tmp_path / "plain.parquet").set_index("customer_id")["churn_probability"]
    assert (churn - plain).abs().max() > 0.05  # the touchpoints move the scores


def test_bad_event_rows_are_named_and_nothing_is_written(events_csv, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.concat([pd.read_csv(events_csv).head(50),
               pd.DataFrame({"customer_id": ["C00001"], "timestamp": ["2025-01-01"], "kind": ["nps"], "value": [12]})]
              ).to_csv(bad, index=False)
    out = tmp_path / "features.parquet"
    proc = subprocess.run([sys.executable, "-m", "churnclv", "features", "-t", str(SEED_CSV), "--events", str(bad),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and not out.exists() and "Traceback" not in proc.stderr
    assert "column 'value': 1 row(s) of kind 'nps' are not an answer from 0 to 10 (e.g. row 51: '12.0')" in \
        " ".join(proc.stderr.split())


def test_features_with_events_add_the_touchpoint_columns_and_count_strangers(events_csv, tmp_path):
    stray = tmp_path / "events.csv"
    pd.concat([pd.read_csv(events_csv), pd.DataFrame({"customer_id": ["X1", "X1", "X2"], "timestamp": ["2025-01-01"] * 3,
                                                      "kind": ["visit"] * 3, "value": [None] * 3})]).to_csv(stray, index=False)
    out = tmp_path / "features.parquet"
    result = runner.invoke(app, ["features", "-t", str(SEED_CSV), "--events", str(stray), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 event(s) of 2 customer(s) without a transaction are not used (e.g. X1, X2)" in " ".join(result.output.split())
    table = pd.read_parquet(out)
    assert {"nps_last", "email_open_rate_90d", "unsubscribed"} <= set(table.columns) and len(table) == 4000
