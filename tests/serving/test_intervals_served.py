"""Intervals on every forecast, as served: the score table's columns in /score and /score_transactions (the
same numbers), the population's totals with their interval in GET /model and the MLflow run, the page's
customer view and overview (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest

from churnclv.contract.columns import SCORE_INTERVALS
from tests.serving.conftest import AUTH


def test_the_score_table_holds_intervals_around_its_figures(batch):
    assert set(SCORE_INTERVALS) <= set(batch.columns)
    assert (batch["expected_purchases_low"] <= batch["expected_purchases_high"]).all()
    assert (batch["clv_low"] <= batch["clv_high"]).all() and (batch["clv_low"] >= 0).all()
    busy = batch["expected_purchases"] > 1.5  # customers expected to buy: their interval is not [0, 0]
    assert busy.any() and (batch.loc[busy, "expected_purchases_high"] >= 1).all()
    assert (batch.loc[busy, "clv_high"] > batch.loc[busy, "clv"]).all()


def test_score_and_score_transactions_answer_with_the_same_intervals(api, batch, seed_transactions):
    ids = batch.sort_values("expected_purchases", ascending=False)["customer_id"].head(3).tolist()
    scores = api.client.post("/score", json={"customer_ids": ids}, headers=AUTH).json()["scores"]
    for row in scores:
        expected = batch.set_index("customer_id").loc[row["customer_id"]]
        for column in SCORE_INTERVALS:
            assert row[column] == pytest.approx(float(expected[column]))
    posted = seed_transactions[seed_transactions["customer_id"].isin(ids)]
    body = {"as_of": str(api.trained.as_of.date()), "transactions": [
        {"customer_id": r.customer_id, "timestamp": r.timestamp.isoformat(), "amount": float(r.amount)}
        for r in posted.itertuples()]}
    online = api.client.post("/score_transactions", json=body, headers=AUTH).json()["scores"]
    by_id = {r["customer_id"]: r for r in scores}
    for row in online:  # one customer's intervals depend on that customer's history and the model only
        for column in SCORE_INTERVALS:
            assert row[column] == pytest.approx(by_id[row["customer_id"]][column], rel=1e-9)


def test_model_info_and_the_run_carry_the_population_interval(api):
    import mlflow

    population = api.client.get("/model", headers=AUTH).json()["population"]
    assert population["level"] == 0.8 and population["horizon_days"] > 0
    assert population["purchases_low"] < population["purchases"] < population["purchases_high"]
    assert population["spend_low"] < population["spend"] < population["spend_high"]
    run = mlflow.MlflowClient(api.trained.tracking_uri).get_run(api.trained.run_id)
    assert run.data.metrics["population.purchases_low"] == pytest.approx(population["purchases_low"])
    assert run.data.params["interval_level"] == "0.8"


def test_the_page_shows_the_intervals(api, batch):
    cid = batch.sort_values("expected_purchases", ascending=False)["customer_id"].iloc[0]
    row = batch.set_index("customer_id").loc[cid]
    html = api.client.get(f"/app/customer?id={cid}", headers=AUTH).text
    low, high = int(row["expected_purchases_low"]), int(row["expected_purchases_high"])
    assert f'id="purchases-interval">80% interval {low:,}–{high:,}<' in html
    assert 'id="clv-interval">80% interval ' in html
    population = api.client.get("/model", headers=AUTH).json()["population"]
    overview = api.client.get("/app/overview", headers=AUTH).text
    assert f"80% interval {population['purchases_low']:,.0f}–{population['purchases_high']:,.0f}" in overview
    assert np.isfinite(population["seasonal_widening"])


def test_prioritise_and_the_plan_csv_carry_the_clv_interval(api, batch):
    import csv
    import io

    plan = api.client.post("/prioritise", json={"limit": 20}, headers=AUTH).json()["customers"]
    table = batch.set_index("customer_id")
    for row in plan:
        assert row["clv_low"] == pytest.approx(float(table.loc[row["customer_id"], "clv_low"]))
        assert row["clv_low"] <= row["clv_high"]
    rows = list(csv.DictReader(io.StringIO(api.client.get("/app/plan.csv?plan_by=contacts&contacts=20",
                                                          headers=AUTH).text)))
    assert [float(r["clv_high"]) for r in rows] == pytest.approx([r["clv_high"] for r in plan])
