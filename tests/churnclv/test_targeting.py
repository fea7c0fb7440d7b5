"""The targeting commands on a copy of the seed scores: plan -> lists, effect recorded -> learned rates in
the next plan, suppress and forget (nobody suppressed or forgotten in a plan, list or score table)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnclv.cli import app
from churnclv.contract.errors import ChurnclvError
from tests.conftest import SEED_CSV

runner = CliRunner()


@pytest.fixture()
def home(trained_home, tmp_path, monkeypatch):
    (tmp_path / "scores").mkdir()
    shutil.copy(trained_home.scores_path, tmp_path / "scores" / "latest.parquet")
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    for name in ("CHURNCLV_SCORES_PATH", "CHURNCLV_DB_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*words):
    result = runner.invoke(app, list(words))
    assert result.exit_code == 0, result.output
    return result.output


def test_db_upgrade_names_the_store_and_its_revision(home):
    out = run("db", "upgrade")
    assert "churnclv.db" in out and "newest" in out
    bad = runner.invoke(app, ["db", "upgrade"], env={"CHURNCLV_DB_URL": "sqlite:////no/such/folder/x.db"})
    assert isinstance(bad.exception, ChurnclvError) and "does not exist" in str(bad.exception)  # main(): one line


def test_plan_writes_both_lists_and_the_next_plan_learns_from_the_measured_effect(home):
    out = run("plan", "autumn", "--limit", "400", "--control-share", "0.5", "--campaign-date", "2025-09-01",
              "--window-days", "60")
    folder = home / "out" / "campaigns" / "autumn"
    contacts, controls = pd.read_csv(folder / "contacts.csv"), pd.read_csv(folder / "controls.csv")
    assert len(contacts) + len(controls) == 400 and not set(contacts["customer_id"]) & set(controls["customer_id"])
    assert "assumed" in out and "Recorded campaign 'autumn'" in out
    assert "Already recorded" in run("plan", "autumn", "--limit", "400", "--control-share", "0.5",
                                      "--campaign-date", "2025-09-01", "--window-days", "60")
    effect = run("campaigns", "effect", "autumn", "-t", str(SEED_CSV))
    assert "Effect of autumn" in effect and "final figures" in effect and "Recorded" in effect
    assert "finish" in run("campaigns", "list")
    assert "measured" in run("plan", "next", "--limit", "50")


def test_suppressed_and_forgotten_customers_leave_every_list(home):
    scores = pd.read_parquet(home / "scores" / "latest.parquet")
    first = run("plan", "before", "--limit", "60")
    assert "Recorded" in first
    listed = pd.read_csv(home / "out" / "campaigns" / "before" / "contacts.csv")["customer_id"].tolist()
    objected, erased = listed[0], listed[1]
    (home / "optouts.csv").write_text(f"customer_id\n{objected}\n")
    assert "Suppressed 1 customer(s)" in run("suppress", str(home / "optouts.csv"))
    out = run("forget", erased)
    assert "score table" in out and "campaign 'before': 1 member(s)" in out
    receipt = json.loads(next((home / "receipts").glob("forget-*.json")).read_text())
    assert receipt["score_files"] == {str(home / "scores" / "latest.parquet"): 1}
    assert receipt["campaign_members"] == {"before": 1} and receipt["suppressed"] == 1
    assert erased not in set(pd.read_parquet(home / "scores" / "latest.parquet")["customer_id"])
    assert len(pd.read_parquet(home / "scores" / "latest.parquet")) == len(scores) - 1
    run("plan", "after", "--limit", "60", "--control-share", "0.2")
    folder = home / "out" / "campaigns" / "after"
    again = set(pd.read_csv(folder / "contacts.csv")["customer_id"]) | set(pd.read_csv(folder / "controls.csv")["customer_id"])
    assert not {objected, erased} & again
    kept = pd.read_csv(home / "out" / "campaigns" / "before" / "contacts.csv")  # an earlier file is the user's own
    assert erased in set(kept["customer_id"])


def test_a_plan_refuses_limit_and_budget_together(home):
    result = runner.invoke(app, ["plan", "x", "--limit", "5", "--budget", "10"])
    assert isinstance(result.exception, ChurnclvError) and "not both" in str(result.exception)


def test_quickstart_records_the_seed_s_finished_campaign_once_and_rates_are_learned_from_it(home):
    from churnclv.campaigns import learn_save_rates, list_campaigns, measurements, open_store
    from churnclv.contract.settings import Settings
    from churnclv.quickstart import SEED_CAMPAIGN_NAME, seed_campaign

    settings = Settings.load()
    seed_campaign(settings)
    seed_campaign(settings)  # make run again: nothing new
    engine = open_store(settings.campaign_store)
    assert [c.name for c in list_campaigns(engine)] == [SEED_CAMPAIGN_NAME]
    measured = measurements(engine, finished_only=True)
    assert len(measured) == 4 and measured["finished"].all()
    rates = learn_save_rates(measured).set_index("segment")
    assert (rates["source"] == "measured").all()
    assert rates.loc["loyal", "harmful"] and not rates.drop(index="loyal")["harmful"].any()  # the sleeping dogs
    assert "measured" in run("plan", "after-seed", "--limit", "20")


def test_a_forgotten_customer_s_transactions_are_left_out_of_later_commands(home):
    tx = pd.read_csv(SEED_CSV, dtype={"customer_id": "str"})
    who = tx["customer_id"].iloc[0]
    run("forget", who)
    out = run("features", "-t", str(SEED_CSV), "--out", str(home / "f.parquet"))
    assert "erased by churnclv forget" in out
    features = pd.read_parquet(home / "f.parquet")
    ids = set(features["customer_id"]) if "customer_id" in features else set(features.index)
    assert who not in ids and len(ids) == tx["customer_id"].nunique() - 1


def test_a_score_table_that_cannot_be_rewritten_stops_the_erasure_before_the_store(home):
    from churnclv.campaigns import open_store, suppressed_ids
    from churnclv.contract.settings import Settings

    bad = home / "scores" / "broken.parquet"
    bad.write_text("not parquet")
    result = runner.invoke(app, ["forget", "C00001"])
    assert isinstance(result.exception, ChurnclvError) and "broken.parquet" in str(result.exception)
    assert "C00001" not in suppressed_ids(open_store(Settings.load().campaign_store))
