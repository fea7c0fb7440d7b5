"""``churnclv campaigns uplift``: fitted from the campaign store and a transaction log, judged on a campaign
it did not see, registered in the home's MLflow store; ``churnclv plan`` then ranks by it."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnclv.campaigns import campaign_members, open_store
from churnclv.cli import app
from churnclv.scoring.registry import connect
from churnclv.scoring.uplift import UPLIFT_ALIAS, UPLIFT_MODEL_NAME
from tests.campaigns.simulated import record_past_campaigns

runner = CliRunner()


@pytest.fixture()
def home(trained_home, tmp_path, monkeypatch):
    (tmp_path / "scores").mkdir()
    shutil.copy(trained_home.scores_path, tmp_path / "scores" / "latest.parquet")
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    for name in ("CHURNCLV_SCORES_PATH", "CHURNCLV_DB_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    tx = record_past_campaigns(open_store(f"sqlite:///{tmp_path / 'churnclv.db'}"))
    tx.assign(timestamp=tx["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(tmp_path / "tx.csv", index=False)
    return tmp_path


def run(*words):
    result = runner.invoke(app, list(words))
    assert result.exit_code == 0, result.output
    return result.output


def test_fit_judge_register_then_plan_by_uplift(home):
    tx = str(home / "tx.csv")
    below = run("campaigns", "uplift", "-t", tx)  # the real threshold: 20,000 members
    assert "needs 11,000 more outcomes" in below and "Registered" not in below
    out = run("campaigns", "uplift", "-t", tx, "--min-outcomes", "3000", "--min-per-group", "500", "--bags", "4")
    assert "learned from: past-0, past-1, past-2" in out and "On past-2 (3,000 members it did not see" in out
    assert "Qini 0." in out and "now churn-clv-uplift@champion" in out
    client = connect(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias(UPLIFT_MODEL_NAME, UPLIFT_ALIAS)
    assert str(champion.version) == "1" and client.get_run(champion.run_id).data.metrics["qini"] > 0
    assert str(home / "mlruns" / "artifacts") in champion.source  # beside the store, not the current folder

    plan = run("plan", "next", "--limit", "80", "--contact-cost", "2", "--segment", "at_risk", "--segment", "loyal",
               "--campaign-date", "2026-01-05")
    assert "churn-clv-uplift v1" in plan and "sleeping dog(s) left out" in plan
    contacts = pd.read_csv(home / "out" / "campaigns" / "next" / "contacts.csv")
    assert set(contacts["segment"]) == {"at_risk"}  # the loyal: contacts lowered their retention
    members = campaign_members(open_store(f"sqlite:///{home / 'churnclv.db'}"), "next")
    assert len(members) == 80
