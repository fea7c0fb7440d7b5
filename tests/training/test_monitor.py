"""The live outcome check: past score tables of the seed data against what happened, by hand."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from typer.testing import CliRunner

from churnclv.training.monitor import THRESHOLDS, PastScores, due, verdict
from tests.conftest import SEED_CSV

runner = CliRunner()


def test_the_verdict_follows_the_stated_thresholds():
    backtest = {"roc_auc": 0.80, "purchases_total_error_pct": -5.0}
    assert verdict({"roc_auc": 0.78, "purchases_total_error_pct": 10.0}, backtest) == ("holding", ())
    word, why = verdict({"roc_auc": 0.76, "purchases_total_error_pct": 0.0}, backtest)  # a drop of 0.04 > 0.03
    assert word == "degrading" and "0.760 against 0.800" in why[0]
    assert verdict({"roc_auc": 0.71, "purchases_total_error_pct": 0.0}, backtest)[0] == "broken"  # 0.09 > 0.08
    assert verdict({"roc_auc": 0.54}, {})[0] == "broken"  # below the floor, whatever the backtest
    word, why = verdict({"roc_auc": 0.80, "purchases_total_error_pct": -20.5}, backtest)  # 20.5 − 5 > 15 points
    assert word == "degrading" and "−" not in why[0] and "-20.5%" in why[0]
    assert verdict({"roc_auc": 0.80, "purchases_total_error_pct": -19.9}, backtest)[0] == "holding"
    assert (THRESHOLDS.auc_degrading, THRESHOLDS.auc_broken, THRESHOLDS.auc_floor) == (0.03, 0.08, 0.55)


def test_only_tables_whose_horizon_has_passed_are_due_once_each():
    table = pd.DataFrame({"customer_id": []})
    past = [PastScores(f"{d}-{v}", pd.Timestamp(d), v, 90, table)
            for d, v in (("2025-06-30", "1"), ("2025-06-30", "1"), ("2025-10-02", "1"), ("2025-10-03", "1"))]
    assert [(p.path) for p in due(past, through="2025-12-31")] == ["2025-06-30-1", "2025-10-02-1"]


def hand_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney: the chance a churner outranks a stayer (ties half)."""
    ranks = rankdata(p)
    pos = y == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def hand_outcome(tx: pd.DataFrame, as_of: str, ids: pd.Index) -> pd.DataFrame:
    """Purchase days and spend of each customer in the 90 days after ``as_of``, from the raw log."""
    start, end = pd.Timestamp(as_of) + pd.Timedelta(days=1), pd.Timestamp(as_of) + pd.Timedelta(days=91)
    window = tx[(tx["timestamp"] >= start) & (tx["timestamp"] < end)]
    buys = window[window["amount"] > 0]
    days = buys.groupby("customer_id")["timestamp"].apply(lambda t: t.dt.normalize().nunique())
    spend = buys.groupby("customer_id")["amount"].sum()
    return pd.DataFrame({"purchases": days.reindex(ids, fill_value=0), "spend": spend.reindex(ids, fill_value=0.0)})


def test_monitor_checks_past_score_tables_against_a_hand_computation(trained_home, tmp_path, monkeypatch):
    """Score tables at three past days of the seed data; the monitor checks the two whose 90 days have passed,
    logs them in MLflow and writes the latest verdict; its figures match a computation from the raw log."""
    from churnclv.cli import app
    from churnclv.scoring.registry import connect

    (tmp_path / "mlruns").mkdir()
    shutil.copy(trained_home.home / "mlruns" / "mlflow.db", tmp_path / "mlruns" / "mlflow.db")
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for day in ("2025-06-30", "2025-08-31", "2025-11-30"):
        scored = runner.invoke(app, ["score", "-t", str(SEED_CSV), "--as-of", day])
        assert scored.exit_code == 0, scored.output
        assert f"scores/{day}-v{trained_home.version}.parquet" in " ".join(scored.output.split()).replace(" ", "")
    result = runner.invoke(app, ["monitor", "-t", str(SEED_CSV)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Latest verdict" in out and "2025-11-30" not in out  # its horizon ends after the log

    client = connect(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts")
    experiment = client.get_experiment_by_name("churn-clv/monitor")
    runs = {r.data.tags["monitor.scores_as_of"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["2025-06-30", "2025-08-31"]
    recorded = client.get_run(trained_home.run_id).data.metrics
    tx = pd.read_csv(SEED_CSV, parse_dates=["timestamp"], dtype={"customer_id": str})
    for day, run in runs.items():
        scores = pd.read_parquet(tmp_path / "scores" / f"{day}-v{trained_home.version}.parquet").set_index("customer_id")
        real = hand_outcome(tx, day, scores.index)
        y, p = (real["purchases"] == 0).to_numpy(float), scores["churn_probability"].to_numpy()
        top = np.argsort(-p, kind="stable")[: len(p) // 10]
        m = run.data.metrics
        assert m["customers"] == len(scores)
        assert m["churn_rate"] == pytest.approx(y.mean())
        assert m["roc_auc"] == pytest.approx(hand_auc(y, p))
        assert m["lift_top_decile"] == pytest.approx(y[top].mean() / y.mean(), rel=0.02)
        assert m["purchases_actual"] == real["purchases"].sum()
        assert m["purchases_predicted"] == pytest.approx(scores["expected_purchases"].sum())
        assert m["spend_actual"] == pytest.approx(real["spend"].sum())
        assert m["purchases_total_error_pct"] == pytest.approx(
            100 * (scores["expected_purchases"].sum() / real["purchases"].sum() - 1))
        assert m["backtest.roc_auc"] == pytest.approx(recorded["model.roc_auc"])
        assert m["purchases_low"] < m["purchases_high"] and m["spend_low"] < m["spend_high"]  # the model's interval
        assert m["purchases_in_interval"] == float(m["purchases_low"] <= real["purchases"].sum() <= m["purchases_high"])
        assert m["spend_in_interval"] == float(m["spend_low"] <= real["spend"].sum() <= m["spend_high"])
        for segment, rows in scores.groupby("segment"):
            assert m[f"segment.{segment}.customers"] == len(rows)
            assert m[f"segment.{segment}.churn_rate"] == pytest.approx((real.loc[rows.index, "purchases"] == 0).mean())
        word, _ = verdict({"roc_auc": m["roc_auc"], "purchases_total_error_pct": m["purchases_total_error_pct"]},
                          {"roc_auc": recorded["model.roc_auc"],
                           "purchases_total_error_pct": recorded["model.purchases_total_error_pct"]})
        assert run.data.tags["monitor.verdict"] == word

    latest = json.loads((tmp_path / "scores" / "monitor.json").read_text())
    assert latest["scores_as_of"] == "2025-08-31" and latest["checks"] == 2
    assert latest["verdict"] == runs["2025-08-31"].data.tags["monitor.verdict"]
    assert latest["roc_auc"] == pytest.approx(runs["2025-08-31"].data.metrics["roc_auc"])
    assert runner.invoke(app, ["monitor", "-t", str(SEED_CSV)]).exit_code == 0  # the same checks again: not logged twice
    assert len(client.search_runs([experiment.experiment_id])) == 2


def test_a_table_of_another_log_is_named_not_a_traceback(seed_transactions):
    from churnclv.contract import ChurnclvError
    from churnclv.training.monitor import check

    table = pd.DataFrame({"customer_id": ["X1", "X2"], "churn_probability": [0.5, 0.5], "expected_purchases": [1.0, 1.0],
                          "expected_spend": [9.0, 9.0]})
    past = PastScores("other.parquet", pd.Timestamp("2025-06-30"), "1", 90, table)
    with pytest.raises(ChurnclvError, match=r"other.parquet: none of its 2 customers \(e.g. X1, X2\)"):
        check(past, seed_transactions, through="2025-12-31", backtest={})
