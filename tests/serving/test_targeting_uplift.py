"""Plans ranked by the per-customer uplift model, served beside the churn model.

A real MLflow store in a temporary folder (a copy of the trained seed store, so the churn champion is
there), three simulated past campaigns with known effects per segment recorded in a real campaign store
(contacts harm the loyal), the uplift model fitted on them with ``churnclv campaigns uplift``'s function
and registered as ``churn-clv-uplift@champion``; then the service's state loads it at reload.

Checked: the plan's order is ``clv × uplift − contact_cost`` (against :func:`scoring.uplift.rank_by_uplift`
run on the same predictions), the sleeping dogs are absent and counted, suppressed customers stay out,
a request with its own save rate ranks by it; before the model is registered the answer says that
segment rates are used and how many more outcomes the model needs.
"""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest

from churnclv.campaigns import open_store, suppress
from churnclv.scoring.registry import connect
from churnclv.scoring.uplift import UPLIFT_MIN_OUTCOMES, UpliftScorer, rank_by_uplift
from churnclv.serving.state import ServingState
from churnclv.serving.targeting import Targeting
from churnclv.training.uplift import SERVED_FEATURES, UpliftSettings, train_uplift
from tests.campaigns.simulated import record_past_campaigns
from tests.serving.conftest import AUTH

COST = 2.0
#: The segments of the simulated campaigns; loyal is no_contact by the policy, so it is asked for by name.
SEGMENTS = ["high_value_at_risk", "at_risk", "steady", "loyal"]
SETTINGS = UpliftSettings(bags=4, n_estimators=60, min_outcomes=3_000, min_per_group=500)


@pytest.fixture(scope="module")
def world(trained_home, tmp_path_factory):
    """The copied MLflow store, the campaign store with three finished campaigns, their transactions."""
    folder = tmp_path_factory.mktemp("uplift-world")
    source = sqlite3.connect(trained_home.tracking_uri.removeprefix("sqlite:///"))
    (folder / "mlruns").mkdir()
    target = sqlite3.connect(folder / "mlruns" / "mlflow.db")
    source.backup(target)  # the churn champion's artifacts stay where they are (read only)
    source.close(), target.close()
    scores = folder / "scores" / "latest.parquet"
    scores.parent.mkdir()
    shutil.copy(trained_home.scores_path, scores)
    url = f"sqlite:///{folder / 'churnclv.db'}"
    engine = open_store(url)
    transactions = record_past_campaigns(engine)
    return {"tracking_uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}", "artifacts": folder / "artifacts",
            "scores": scores, "url": url, "engine": engine, "transactions": transactions}


def serve(api, world):
    state = ServingState(api.config(tracking_uri=world["tracking_uri"], scores_path=world["scores"],
                                    artifact_root=world["artifacts"]))
    state.refresh(force=True)
    api.service.state = state
    api.service.targeting = Targeting(world["url"], served=lambda: state.current)
    return state


@pytest.fixture()
def served(api, world):
    original = api.service.targeting
    yield lambda: serve(api, world)
    api.service.targeting.close()
    api.service.targeting = original


def prioritise(api, **body):
    answer = api.client.post("/prioritise", json={"contact_cost": COST, "segments": SEGMENTS, **body}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def registered(world):
    """``churnclv campaigns uplift``'s function on the store: judged on past-2, registered, champion."""
    client = connect(world["tracking_uri"], world["artifacts"])
    return train_uplift(world["engine"], world["transactions"], client, settings=SETTINGS,
                        artifact_root=world["artifacts"])


def test_before_a_model_is_registered_the_answer_says_segment_rates_and_how_many_more(api, world, served):
    state = served()
    assert state.current.uplift is None and state.current.uplift_problem is None
    summary = prioritise(api, limit=50)["summary"]
    members = 3 * 3_000  # three finished campaigns in the store
    assert summary["ranked_by"] == "save_rates"
    assert summary["uplift"].startswith(f"segment rates are used; the per-customer uplift model needs "
                                        f"{UPLIFT_MIN_OUTCOMES - members:,} more outcomes")
    assert summary["left_out_segments"] == ["loyal"]  # measured: contacts lowered their retention
    loyal = int((pd.read_parquet(world["scores"])["segment"] == "loyal").sum())
    assert summary["sleeping_dogs"] == loyal


def test_the_plan_ranks_by_clv_times_uplift_minus_cost_and_leaves_out_the_sleeping_dogs(api, world, served,
                                                                                        registered):
    assert registered.promoted and registered.judged.held_out == ("past-2",)
    assert registered.judged.metrics["qini"] > 0
    state = served()
    uplift = state.current.uplift
    assert uplift is not None and uplift.version == registered.version and state.current.uplift_problem is None
    answer = prioritise(api, limit=300)
    summary, rows = answer["summary"], answer["customers"]
    assert summary["ranked_by"] == "uplift" and f"churn-clv-uplift v{registered.version}" in summary["uplift"]

    # the reference: scoring.uplift.rank_by_uplift on the same predictions, over the plan's segments
    table = pd.read_parquet(world["scores"])
    model = UpliftScorer.from_dict(registered.final.model.to_dict())
    frame = pd.concat([table, model.predict(table[list(SERVED_FEATURES)])], axis=1)
    frame = frame.loc[frame["segment"].isin(summary["segments"])]
    expected = rank_by_uplift(frame, contact_cost=COST, budget=300, harmful_segments={"loyal"})
    assert [r["customer_id"] for r in rows] == expected.contacts["customer_id"].tolist()
    everyone = rank_by_uplift(frame, contact_cost=COST, harmful_segments={"loyal"})
    assert len(rows) == 300 and summary["qualifying"] == len(everyone.contacts)
    assert summary["expected_value_saved_qualifying"] == pytest.approx(float(everyone.contacts["value"].sum()))
    saved = np.array([r["expected_value_saved"] for r in rows])
    np.testing.assert_allclose(saved, [r["clv"] * r["uplift"] - COST for r in rows], rtol=1e-9)
    assert np.all(np.diff(saved) <= 0) and saved[-1] > 0

    dogs = (frame["uplift_high"] < 0) | (frame["segment"] == "loyal")
    assert 0 < expected.by_customer and summary["sleeping_dogs"] == expected.sleeping_dogs == int(dogs.sum())
    assert f"{int(dogs.sum()):,} sleeping dog(s) left out" in summary["uplift"]
    assert not {r["customer_id"] for r in rows} & set(frame.loc[dogs, "customer_id"])
    # the page's plan says it in the same words, its first letter raised and nothing else lowered ("Qini")
    query = "&".join([f"contact_cost={COST}", "plan_by=budget", "budget=300", *(f"segments={s}" for s in SEGMENTS)])
    html = api.client.get(f"/app/plan?{query}", headers=AUTH).text
    head = summary["uplift"].split(" ranks the plan by")[0]
    assert "Qini" in head and head[:1].upper() + head[1:] in html

    # a request with its own save rate ranks by value at risk × that rate, and says the model is not used
    own = prioritise(api, limit=20, save_rate=0.2)
    assert own["summary"]["ranked_by"] == "save_rates" and "leave save_rate out" in own["summary"]["uplift"]
    assert [r["uplift"] for r in own["customers"]] == [None] * 20


def test_suppressed_customers_stay_out_of_the_uplift_plan(api, world, served, registered):
    served()
    first = prioritise(api, limit=10)["customers"]
    top = first[0]["customer_id"]
    suppress(world["engine"], [top], reason="test", source="test", who="test")
    try:
        again = prioritise(api, limit=10)
        assert top not in {r["customer_id"] for r in again["customers"]}
        assert [r["customer_id"] for r in again["customers"]][:9] == [r["customer_id"] for r in first][1:10]
        assert again["summary"]["suppressed"] == 1
    finally:
        from churnclv.campaigns import unsuppress

        unsuppress(world["engine"], top, who="test")


def test_a_campaign_and_the_profit_curve_follow_the_uplift_ranking(api, world, served, registered):
    served()
    plan = prioritise(api, limit=120)
    made = api.client.post("/campaigns", json={"name": "by-uplift", "limit": 120, "contact_cost": COST,
                                               "segments": SEGMENTS, "control_share": 0.1}, headers=AUTH)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["plan"]["ranked_by"] == "uplift" and body["plan"]["sleeping_dogs"] == plan["summary"]["sleeping_dogs"]
    members = {c["customer_id"] for c in body["contacts"]} | {c["customer_id"] for c in body["controls"]}
    assert members == {r["customer_id"] for r in plan["customers"]}
    curve = api.client.post("/profit_curve", json={"limit": 120, "contact_cost": COST, "segments": SEGMENTS},
                            headers=AUTH).json()
    assert curve["chosen"]["contacts"] == 120
    assert curve["chosen"]["expected_net_value"] == pytest.approx(plan["summary"]["expected_value_saved_returned"])


def test_a_large_table_gets_its_uplift_in_the_background_and_plans_say_so_meanwhile(api, world, served, registered,
                                                                                    monkeypatch):
    import threading

    from churnclv.serving import uplift as served_uplift

    monkeypatch.setattr(served_uplift, "SYNC_ROWS", 100)  # the seed table's 4,000 customers count as large here
    gate = threading.Event()
    busy = served_uplift._background().submit(gate.wait, 60)  # the worker is busy: the predictions wait behind
    try:
        state = served()
        future = state.current.uplift.future
        assert not future.done()
        waiting = prioritise(api, limit=20)["summary"]
        assert waiting["ranked_by"] == "save_rates"
        assert "is computing the uplift of the 4,000 customers" in " ".join(waiting["warnings"])
    finally:
        gate.set()
    busy.result(timeout=60)
    future.result(timeout=120)
    ready = prioritise(api, limit=20)["summary"]
    assert ready["ranked_by"] == "uplift" and not ready["warnings"]


def test_a_champion_that_cannot_rank_the_table_is_named_and_segment_rates_rank(api, world, served, registered):
    from churnclv.scoring.uplift import UPLIFT_ALIAS, UPLIFT_MODEL_NAME
    from churnclv.training.uplift import register_uplift

    client = connect(world["tracking_uri"], world["artifacts"])
    good = registered.final.model
    wants = UpliftScorer(treated=good.treated, control=good.control, features=("churn_probability", "clv", "frequency"))
    _, version = register_uplift(client, wants, metrics={}, artifact_root=world["artifacts"], alias=UPLIFT_ALIAS)
    try:
        state = served()
        assert state.current.uplift is None
        assert state.current.uplift_problem == (
            f"cannot use the uplift model models:/{UPLIFT_MODEL_NAME}@{UPLIFT_ALIAS} (v{version}): the uplift model "
            "needs column(s) frequency, which the score table lacks")
        answer = prioritise(api, limit=5)
        assert answer["summary"]["ranked_by"] == "save_rates" and answer["customers"]
        assert any("needs column(s) frequency" in w and w.endswith("the segments' rates rank the plan")
                   for w in answer["summary"]["warnings"])
    finally:
        client.set_registered_model_alias(UPLIFT_MODEL_NAME, UPLIFT_ALIAS, registered.version)
