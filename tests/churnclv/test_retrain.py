"""churnclv retrain: a challenger through the champion gate; --if-needed only when the monitor or drift says so."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from churnclv.cli import app
from churnclv.training.monitor import Check, no_retrain_reason, retrain_reasons
from tests.conftest import SEED_CSV

runner = CliRunner()


def check(verdict: str, reasons: tuple[str, ...] = ()) -> Check:
    return Check(scores_as_of="2025-09-30", model_version="3", horizon_days=90, through="2025-12-31", path="",
                 figures={}, backtest={}, verdict=verdict, reasons=reasons)


def test_the_reasons_to_retrain_are_the_monitor_and_drift():
    drifted = {"warning": "drift: 2 of 20 model inputs moved", "psi_max": 0.4, "threshold": 0.25}
    calm = {"warning": None, "psi_max": 0.04, "threshold": 0.25}
    assert retrain_reasons(check("holding"), calm) == []
    assert retrain_reasons(None, None) == []
    assert retrain_reasons(check("holding"), drifted) == ["drift: 2 of 20 model inputs moved"]
    said = retrain_reasons(check("broken", ("churn AUC 0.5",)), calm)
    assert said == ["the monitor says broken on the scores as of 2025-09-30 (v3): churn AUC 0.5"]
    assert no_retrain_reason(check("holding"), calm) == ("the monitor says holding on the scores as of 2025-09-30 (v3); "
                                                          "no drift in the served scores (largest PSI 0.04 ≤ 0.25)")


@pytest.fixture()
def home(trained_home, tmp_path, monkeypatch):
    """A home with the trained model's store (a copy) and scores written by ``churnclv score``."""
    (tmp_path / "mlruns").mkdir()
    shutil.copy(trained_home.home / "mlruns" / "mlflow.db", tmp_path / "mlruns" / "mlflow.db")
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def versions(home) -> list[str]:
    from churnclv.scoring.registry import connect

    client = connect(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}", home / "mlruns" / "artifacts")
    return sorted(str(v.version) for v in client.search_model_versions("name='churn-clv'"))


def test_if_needed_trains_nothing_when_the_scores_hold_and_say_why(home, trained_home):
    assert runner.invoke(app, ["score", "-t", str(SEED_CSV)]).exit_code == 0  # the customers it was trained on
    result = runner.invoke(app, ["retrain", "-t", str(SEED_CSV), "--if-needed"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Not retraining: no past score table has a horizon that ended yet" in out
    assert "no drift in the served scores (largest PSI 0.00 ≤ 0.25)" in out
    assert versions(home) == [trained_home.version]


def test_if_needed_retrains_on_drift_and_the_gate_decides(home, trained_home, seed_transactions):
    shifted = home / "shifted.csv"
    seed_transactions.assign(amount=seed_transactions["amount"] * 4).to_csv(shifted, index=False)
    assert runner.invoke(app, ["score", "-t", str(shifted)]).exit_code == 0  # customers spending four times as much
    result = runner.invoke(app, ["retrain", "-t", str(shifted), "--if-needed", "--cutoffs", "4", "--step-days", "28"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Retraining: drift: " in out and "monetary_value" in out
    assert f"registered as churn-clv v{int(trained_home.version) + 1}" in out
    assert "promoted over" in out or "kept v" in out  # the champion gate decided, and said so
    assert versions(home) == [trained_home.version, str(int(trained_home.version) + 1)]


def test_if_needed_trains_the_first_model_when_there_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["retrain", "-t", str(SEED_CSV), "--if-needed", "--cutoffs", "2", "--step-days", "28"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Retraining: no champion yet" in out and "the first registered version becomes champion" in out
