"""The monitor's verdict and the drift report in GET /model, the page and /metrics (a real server scraped)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

from churnclv.scoring.scores import MONITOR_FILE, score_metadata, write_scores
from tests.serving.conftest import AUTH
from tests.serving.test_server import BEARER, running_server


def trust_home(trained_home, seed_transactions, folder: Path) -> Path:
    """A CHURNCLV_HOME with the trained model's store, a score table of customers spending four times as much
    (drift) and a monitor verdict of "degrading" beside it."""
    from churnclv.scoring.bundle import score_table
    from churnclv.scoring.drift import bundle_drift
    from churnclv.scoring.registry import connect, load_bundle
    from churnclv.training.monitor import Check, summary

    (folder / "mlruns").mkdir(parents=True)
    shutil.copy(trained_home.home / "mlruns" / "mlflow.db", folder / "mlruns" / "mlflow.db")
    bundle = load_bundle(connect(trained_home.tracking_uri, trained_home.home / "mlruns" / "artifacts"),
                         "models:/churn-clv@champion")
    shifted = seed_transactions.assign(amount=seed_transactions["amount"] * 4)
    snapshot = bundle.snapshot(shifted, as_of=trained_home.as_of)
    drift = bundle_drift(bundle, snapshot, as_of=trained_home.as_of)
    metadata = score_metadata(bundle, as_of=trained_home.as_of) | {"drift": json.dumps(drift)}
    write_scores(score_table(bundle, shifted, as_of=trained_home.as_of, snapshot=snapshot),
                 folder / "scores" / "latest.parquet", metadata)
    check = Check(scores_as_of="2025-09-30", model_version=trained_home.version, horizon_days=90,
                  through="2025-12-31", path="", figures={"customers": 100.0, "roc_auc": 0.74,
                                                          "purchases_total_error_pct": 3.0},
                  backtest={"roc_auc": 0.79}, verdict="degrading",
                  reasons=("churn AUC 0.740 against 0.790 in the backtest (a drop of 0.050 > 0.03)",))
    (folder / "scores" / MONITOR_FILE).write_text(json.dumps(summary(check)))
    return folder


@pytest.fixture(scope="module")
def home(trained_home, seed_transactions, tmp_path_factory) -> Path:
    return trust_home(trained_home, seed_transactions, tmp_path_factory.mktemp("trust"))


def test_model_and_the_page_show_the_verdict_and_the_drift_warning(api, home):
    from churnclv.serving.state import ServingState

    api.service.state = ServingState(api.config(scores_path=home / "scores" / "latest.parquet"))
    api.service.state.refresh(force=True)
    info = api.client.get("/model", headers=AUTH).json()
    assert info["monitor"]["verdict"] == "degrading" and info["monitor"]["backtest_roc_auc"] == 0.79
    assert "monetary_value" in info["drift"]["drifted"] and info["drift"]["psi"]["monetary_value"] > 0.25
    drift_lines = [w for w in info["warnings"] if w.startswith("drift: ")]
    assert len(drift_lines) == 1 and "monetary_value" in drift_lines[0]
    assert any(w.startswith("monitor: the model is degrading") for w in info["warnings"])
    page = api.client.get("/app/overview", headers=AUTH).text
    assert 'id="monitor-verdict"' in page and "Degrading" in page and drift_lines[0].split(" (")[0] in page


def gauge(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name}{labels} not in /metrics"
    return float(found.group(1))


def test_metrics_of_a_real_server_show_the_monitor_and_drift_gauges(home, tmp_path):
    with running_server(home, tmp_path) as url:
        info = httpx.get(f"{url}/model", headers=BEARER, timeout=10).json()
        text = httpx.get(f"{url}/metrics", timeout=10).text
    assert gauge(text, "churnclv_monitor_verdict") == 1.0  # degrading
    assert gauge(text, "churnclv_monitor_roc_auc") == pytest.approx(0.74)
    assert gauge(text, "churnclv_monitor_backtest_roc_auc") == pytest.approx(0.79)
    assert gauge(text, "churnclv_drift_warning") == 1.0
    assert gauge(text, "churnclv_drift_psi", '{feature="monetary_value"}') == pytest.approx(
        info["drift"]["psi"]["monetary_value"])
    assert gauge(text, "churnclv_drift_features") == len(info["drift"]["drifted"])
    assert gauge(text, "churnclv_drift_unseen_share") == 0.0
