"""``train --interval-level``: the level reaches the bundle, the score table and train's closing line (issue 21)."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from churnclv.cli import app
from churnclv.scoring.scores import read_score_metadata
from tests.conftest import SEED_CSV

runner = CliRunner()


def test_train_at_another_level_says_the_population_interval_and_scores_at_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    young = pd.read_csv(SEED_CSV)
    young = young.loc[young["timestamp"] >= "2025-04-01"]  # nine months: BG/NBD alone, quick
    log = tmp_path / "young.csv"
    young.to_csv(log, index=False)
    trained = runner.invoke(app, ["train", "-t", str(log), "--interval-level", "0.9"])
    assert trained.exit_code == 0, trained.output
    said = " ".join(trained.output.split())
    assert "Forecast, total purchases in the next 90 days:" in said and "(90% interval " in said
    assert "the season ahead was never observed" in said  # nine months: no same window a year earlier
    out = tmp_path / "scores.parquet"
    scored = runner.invoke(app, ["score", "-t", str(log), "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    assert read_score_metadata(out)["interval_level"] == "0.9"
    table = pd.read_parquet(out)
    assert (table["expected_purchases_low"] <= table["expected_purchases_high"]).all()
    wide = runner.invoke(app, ["train", "-t", str(log), "--interval-level", "1.5"])
    assert wide.exit_code == 2 and "interval-level" in wide.output
