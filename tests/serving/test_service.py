"""The HTTP service in-process, on a model trained on the seed data and its batch score table."""

from __future__ import annotations

import json
import logging
import threading

import pandas as pd
import pytest

from churnclv.serving.schemas import MAX_IDS, MAX_TRANSACTIONS
from churnclv.serving.state import Served, ServingState
from tests.serving.conftest import AUTH, KEY, KEY2, error_of, write_scores

NUMBERS = ["churn_probability", "p_alive", "expected_purchases", "expected_spend", "clv", "value_at_risk"]


def post(api, path, body, headers=AUTH):
    return api.client.post(path, json=body, headers=headers)


def history(seed_transactions, customer, as_of):
    mine = seed_transactions.loc[(seed_transactions["customer_id"] == customer)
                                 & (seed_transactions["timestamp"] < as_of + pd.Timedelta(days=1))]
    return [{"customer_id": r.customer_id, "timestamp": r.timestamp.isoformat(), "amount": r.amount,
             "order_id": r.order_id, "quantity": r.quantity, "channel": r.channel, "category": r.category}
            for r in mine.itertuples()]


# --- health, readiness, metrics -------------------------------------------------------------------

def test_health_readiness_and_metrics_need_no_key(api):
    for path in ("/healthz", "/livez", "/readyz", "/metrics"):
        assert api.client.get(path).status_code == 200, path


def test_not_ready_and_503_with_what_to_run_without_model_or_table(api, tmp_path):
    config = api.config(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}", artifact_root=tmp_path / "art",
                        scores_path=tmp_path / "scores" / "latest.parquet")
    empty = ServingState(config)
    empty.refresh()
    api.service.state = empty
    assert api.client.get("/readyz").status_code == 503
    assert api.client.get("/healthz").status_code == 200
    error = error_of(post(api, "/score", {"customer_ids": ["x"]}))
    assert error["code"] == "no_score_table" and "churnclv score" in error["message"]
    r = post(api, "/score_transactions", {"as_of": "2025-12-31",
                                          "transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1}]})
    assert r.status_code == 503 and "churnclv train" in error_of(r)["message"]
    assert api.client.get("/model", headers=AUTH).status_code == 503
    assert post(api, "/prioritise", {}).status_code == 503


def test_a_score_table_written_later_is_picked_up_by_reload(api, tmp_path, batch):
    target = tmp_path / "later.parquet"
    state = ServingState(api.config(scores_path=target))
    state.current = Served(model=api.service.state.current.model)  # the loaded model, not loaded again
    state.refresh()
    api.service.state = state
    assert api.client.get("/readyz").status_code == 503
    write_scores(batch, target)
    r = post(api, "/reload", {})
    assert r.status_code == 200 and r.json()["reloaded"] == ["score_table"] and r.json()["problems"] == []
    assert api.client.get("/readyz").status_code == 200
    assert post(api, "/score", {"customer_ids": [batch["customer_id"].iloc[0]]}).status_code == 200


# --- POST /score ----------------------------------------------------------------------------------

def test_score_rows_equal_the_batch_table(api, batch):
    ids = batch["customer_id"].iloc[[0, 17, 1234, 3999]].tolist()
    r = post(api, "/score", {"customer_ids": [*ids, "nobody", ids[0]]})
    assert r.status_code == 200
    body = r.json()
    assert body["unknown_ids"] == ["nobody"] and body["as_of"] == "2025-12-31"
    assert [row["customer_id"] for row in body["scores"]] == ids
    expected = batch.set_index("customer_id").loc[ids]
    for row in body["scores"]:
        want = expected.loc[row["customer_id"]]
        assert [row[c] for c in NUMBERS] == [float(want[c]) for c in NUMBERS]  # exactly the stored values
        assert (row["segment"], row["recommended_action"]) == (want["segment"], want["recommended_action"])
        assert row["drivers"] is None


def test_score_explain_returns_the_stored_drivers(api, batch):
    cid = batch["customer_id"].iloc[5]
    row = post(api, "/score", {"customer_ids": [cid], "explain": True}).json()["scores"][0]
    assert row["drivers"] == json.loads(batch.set_index("customer_id").loc[cid, "drivers"])
    assert {"feature", "value", "contribution"} == set(row["drivers"][0])


def test_explain_on_a_table_without_drivers_says_so(api, batch, tmp_path):
    path = write_scores(batch.drop(columns="drivers"), tmp_path / "plain.parquet")
    state = ServingState(api.config(scores_path=path))
    state.current = Served(model=api.service.state.current.model)
    state.refresh()
    api.service.state = state
    body = post(api, "/score", {"customer_ids": [batch["customer_id"].iloc[0]], "explain": True}).json()
    assert body["scores"][0]["drivers"] is None
    assert "--explain" in body["warnings"][0]


def test_only_unknown_ids_is_not_an_error(api):
    r = post(api, "/score", {"customer_ids": ["ghost-1", "ghost-2"]})
    assert r.status_code == 200 and r.json()["scores"] == [] and r.json()["unknown_ids"] == ["ghost-1", "ghost-2"]


@pytest.mark.parametrize("body, field", [
    ({"customer_ids": []}, "customer_ids"),
    ({"customer_ids": "C00001"}, "customer_ids"),
    ({"customer_ids": [1, 2]}, "customer_ids.0"),
    ({"customer_ids": ["C00001"], "explain": "maybe"}, "explain"),
    ({"customer_ids": ["C00001"], "explian": True}, "explian"),
    ({}, "customer_ids"),
    ([], None),
])
def test_score_rejects_bad_input_with_422(api, body, field):
    r = post(api, "/score", body)
    assert r.status_code == 422
    error = error_of(r)
    assert error["code"] == "invalid_request"
    assert error["details"][0]["field"] == field


def test_too_many_ids_gets_413_naming_the_limit(api):
    r = post(api, "/score", {"customer_ids": [f"c{i}" for i in range(MAX_IDS + 1)]})
    assert r.status_code == 413
    assert "10000" in error_of(r)["message"]
    assert post(api, "/score", {"customer_ids": [f"c{i}" for i in range(MAX_IDS)]}).status_code == 200


def test_malformed_json_and_oversized_bodies(api):
    r = api.client.post("/score", content=b'{"customer_ids": [', headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_json"
    r = api.client.post("/score", content=b"{" + b" " * (8 * 2**20) + b"}",
                        headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and error_of(r)["code"] == "body_too_large"


def test_invalid_requests_log_no_traceback(api, caplog):
    with caplog.at_level(logging.DEBUG):
        api.client.post("/score", content=b"nope", headers={**AUTH, "Content-Type": "application/json"})
        post(api, "/score", {"customer_ids": []})
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


# --- keys -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_every_endpoint_needs_a_key(api, headers):
    for method, path, body in [("POST", "/score", {"customer_ids": ["x"]}), ("POST", "/prioritise", {}),
                               ("POST", "/score_transactions", {}), ("POST", "/reload", {}), ("GET", "/model", None)]:
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, path
        assert error_of(r)["code"] == "unauthorized"
    second = {"Authorization": f"Bearer {KEY2}"}
    assert api.client.get("/model", headers=second).status_code == 200


def test_the_settings_are_read_once_per_process(api, monkeypatch):
    from churnclv.serving.service import configuration

    started = configuration()
    assert started[0] == api.service.state.config
    monkeypatch.setenv("CHURNCLV_API_KEYS", "a-later-key")
    monkeypatch.setenv("CHURNCLV_MAX_BODY_BYTES", "not a number")  # would be refused at start
    assert configuration() is started
    assert api.client.get("/model", headers=AUTH).status_code == 200
    assert api.client.get("/model", headers={"Authorization": "Bearer a-later-key"}).status_code == 401


# --- POST /score_transactions ---------------------------------------------------------------------

def test_posted_history_scores_like_the_batch(api, batch, seed_transactions):
    as_of = api.trained.as_of
    rows = [row for cid in batch["customer_id"].iloc[[3, 300]] for row in history(seed_transactions, cid, as_of)]
    r = post(api, "/score_transactions", {"as_of": f"{as_of:%Y-%m-%d}", "transactions": rows, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transactions_used"] == len(rows) and body["unscored_ids"] == []
    expected = batch.set_index("customer_id")
    for row in body["scores"]:
        want = expected.loc[row["customer_id"]]
        assert [row[c] for c in NUMBERS] == pytest.approx([want[c] for c in NUMBERS], rel=1e-9, abs=1e-12)
        assert (row["segment"], row["recommended_action"]) == (want["segment"], want["recommended_action"])
        stored = json.loads(want["drivers"])
        assert [d["feature"] for d in row["drivers"]] == [d["feature"] for d in stored]


def test_posted_histories_score_like_churnclv_score_to_the_last_digit(api, batch, seed_transactions):
    """The fast path (plain rows, encoded without the contract's frame) and the contract's path (the same rows
    with blanks around the ids) give the batch score table's numbers exactly, intervals included."""
    as_of = api.trained.as_of
    expected = batch.set_index("customer_id")
    numbers = [c for c in batch.columns if c not in ("customer_id", "segment", "recommended_action", "drivers")]
    for position in (0, 7, 150, 420):
        cid = batch["customer_id"].iloc[position]
        rows = history(seed_transactions, cid, as_of)
        for posted in (rows, [{**r, "customer_id": f" {r['customer_id']} "} for r in rows]):
            r = post(api, "/score_transactions", {"as_of": f"{as_of:%Y-%m-%d}", "transactions": posted})
            assert r.status_code == 200, r.text
            (row,) = r.json()["scores"]
            want, shown = expected.loc[cid], [c for c in numbers if c in row]  # the response's numbers
            assert set(NUMBERS) <= set(shown)
            assert {c: row[c] for c in shown} == {c: float(want[c]) for c in shown}
            assert (row["segment"], row["recommended_action"]) == (want["segment"], want["recommended_action"])


def test_customers_without_a_purchase_by_as_of_are_listed_apart(api):
    rows = [{"customer_id": "early", "timestamp": "2025-01-05", "amount": 20.0},
            {"customer_id": "early", "timestamp": "2025-03-05", "amount": 35.5},
            {"customer_id": "late", "timestamp": "2026-02-01", "amount": 10.0}]
    body = post(api, "/score_transactions", {"as_of": "2025-12-31", "transactions": rows}).json()
    assert [s["customer_id"] for s in body["scores"]] == ["early"]
    assert body["unscored_ids"] == ["late"] and body["transactions_used"] == 2


def test_a_history_without_any_purchase_by_as_of_scores_nobody(api):
    rows = [{"customer_id": "late", "timestamp": "2026-02-01", "amount": 10.0},
            {"customer_id": "refund", "timestamp": "2025-02-01", "amount": -10.0}]
    r = post(api, "/score_transactions", {"as_of": "2025-12-31", "transactions": rows})
    assert r.status_code == 200
    assert r.json()["scores"] == [] and r.json()["unscored_ids"] == ["late", "refund"]


def test_posted_transactions_are_checked_by_the_file_contract(api):
    rows = [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 10},
            {"customer_id": "a", "timestamp": "yesterday-ish", "amount": 10},
            {"customer_id": "a", "timestamp": "2025-02-01", "amount": "ten"}]
    r = post(api, "/score_transactions", {"as_of": "2025-12-31", "transactions": rows})
    assert r.status_code == 422
    error = error_of(r)
    assert error["code"] == "invalid_transactions"
    issues = {d["field"]: d["issue"] for d in error["details"]}
    assert "do not parse as dates" in issues["transactions.timestamp"] and "row 2" in issues["transactions.timestamp"]
    assert "not finite numbers" in issues["transactions.amount"] and "'ten'" in issues["transactions.amount"]


@pytest.mark.parametrize("stamp", ["0063-09-27", "9999-01-01", "1899-12-31T23:59:59", "2200-01-01"])
def test_timestamps_outside_the_contract_years_are_a_named_422(api, stamp):
    rows = [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 10},
            {"customer_id": "a", "timestamp": stamp, "amount": 10}]
    r = post(api, "/score_transactions", {"as_of": "2025-12-31", "transactions": rows})
    assert r.status_code == 422, r.text
    error = error_of(r)
    assert error["code"] == "invalid_transactions"
    assert error["details"][0]["field"] == "transactions.timestamp"
    assert "1 row(s) are outside 1900-01-01 .. 2199-12-31" in error["details"][0]["issue"]


@pytest.mark.parametrize("as_of", ["0063-09-27", "0999-01-01"])
def test_an_early_as_of_is_written_with_four_digits(api, as_of):
    rows = [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 10}]
    r = post(api, "/score_transactions", {"as_of": as_of, "transactions": rows})
    assert r.status_code == 200, r.text
    assert r.json()["as_of"] == as_of and r.json()["unscored_ids"] == ["a"]


@pytest.mark.parametrize("body, field", [
    ({"as_of": "2025-02-30", "transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1}]}, "as_of"),
    ({"as_of": "soon", "transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1}]}, "as_of"),
    ({"as_of": "2025-12-31", "transactions": []}, "transactions"),
    ({"as_of": "2025-12-31", "transactions": [{"customer_id": "a", "timestamp": "2025-01-01"}]},
     "transactions.0.amount"),
    ({"transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1}]}, "as_of"),
])
def test_score_transactions_rejects_bad_input_with_422(api, body, field):
    r = post(api, "/score_transactions", body)
    assert r.status_code == 422
    assert error_of(r)["details"][0]["field"] == field


def test_too_many_transactions_gets_413_naming_the_limit(api):
    rows = [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1}] * (MAX_TRANSACTIONS + 1)
    r = post(api, "/score_transactions", {"as_of": "2025-12-31", "transactions": rows})
    assert r.status_code == 413 and "50000" in error_of(r)["message"]


# --- POST /prioritise -----------------------------------------------------------------------------

def test_prioritise_ranks_by_expected_value_saved(api, batch):
    body = post(api, "/prioritise", {"limit": 25, "contact_cost": 2.0, "save_rate": 0.2}).json()
    saved = batch["value_at_risk"] * 0.2 - 2.0
    contactable = batch["recommended_action"] != "no_contact"  # the policy's default: no touchpoint for these
    qualifying = batch.assign(saved=saved).loc[(saved > 0) & contactable].sort_values(
        "saved", ascending=False, kind="stable")
    assert [c["customer_id"] for c in body["customers"]] == qualifying["customer_id"].head(25).tolist()
    assert [c["rank"] for c in body["customers"]] == list(range(1, 26))
    summary = body["summary"]
    assert summary["qualifying"] == len(qualifying) and summary["returned"] == 25
    assert summary["expected_value_saved_qualifying"] == pytest.approx(qualifying["saved"].sum())
    assert summary["expected_value_saved_returned"] == pytest.approx(qualifying["saved"].head(25).sum())
    assert all(c["expected_value_saved"] > 0 for c in body["customers"])
    assert all(c["recommended_action"] != "no_contact" for c in body["customers"])
    assert set(summary["segments"]) == set(batch.loc[contactable, "segment"])


def test_prioritise_within_segments(api, batch):
    segments = ["at_risk", "high_value_at_risk"]
    body = post(api, "/prioritise", {"limit": 10, "segments": segments}).json()
    assert {c["segment"] for c in body["customers"]} <= set(segments)
    subset = batch.loc[batch["segment"].isin(segments) & (batch["value_at_risk"] * 0.3 - 1.0 > 0)]  # the prior's rate
    assert body["summary"]["qualifying"] == len(subset)
    r = post(api, "/prioritise", {"segments": ["at_risk", "VIP"]})
    assert r.status_code == 422 and "VIP" in error_of(r)["message"]


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": -3}, {"limit": 10**6}, {"contact_cost": -1},
                                  {"save_rate": 0}, {"save_rate": 1.5}, {"limit": "ten"}, {"segments": []}])
def test_prioritise_rejects_bad_numbers(api, body):
    r = post(api, "/prioritise", body)
    assert r.status_code in (413, 422) and error_of(r)["details"]


# --- GET /model -----------------------------------------------------------------------------------

def test_model_reports_what_is_served(api, batch):
    body = api.client.get("/model", headers=AUTH).json()
    trained = api.trained
    assert (body["name"], body["version"], body["run_id"]) == ("churn-clv", trained.version, trained.run_id)
    assert body["uri"] == f"models:/churn-clv/{trained.version}"
    assert body["trained_as_of"] == "2025-12-31" and body["horizon_days"] == 90
    assert "roc_auc" in body["metrics"] and body["data"]["customers"] > 0
    assert body["score_table"]["customers"] == len(batch) and body["score_table"]["as_of"] == "2025-12-31"
    assert body["score_table"]["model_version"] == trained.version and body["score_table"]["has_drivers"]
    assert body["warnings"] == []


def test_model_warns_when_the_table_comes_from_another_version(api, batch, tmp_path):
    path = write_scores(batch, tmp_path / "old.parquet", model_version="999")
    state = ServingState(api.config(scores_path=path))
    state.current = Served(model=api.service.state.current.model)
    state.refresh()
    api.service.state = state
    warnings = api.client.get("/model", headers=AUTH).json()["warnings"]
    assert len(warnings) == 1 and "v999" in warnings[0]


# --- hot reload -----------------------------------------------------------------------------------

def test_reload_under_a_stream_of_requests_loses_none(api, batch, tmp_path):
    path = write_scores(batch, tmp_path / "live.parquet")
    state = ServingState(api.config(scores_path=path))
    state.current = Served(model=api.service.state.current.model)
    state.refresh()
    api.service.state = state
    ids = batch["customer_id"].iloc[:50].tolist()
    statuses, seen, stop = [], {}, threading.Event()
    answered = threading.Condition()

    def hammer():
        while not stop.is_set():
            r = post(api, "/score", {"customer_ids": ids})
            with answered:
                statuses.append(r.status_code)
                if r.status_code == 200:
                    as_of = r.json()["as_of"]
                    seen[as_of] = seen.get(as_of, 0) + 1
                answered.notify_all()

    def until(condition) -> bool:
        with answered:
            return answered.wait_for(condition, timeout=60)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        assert until(lambda: seen.get("2025-12-31", 0) >= 5 or len(statuses) > 200)  # the old table is served
        newer = batch.assign(clv=batch["clv"] * 2)
        write_scores(newer, path, as_of="2026-01-07")
        r = post(api, "/reload", {})
        assert r.status_code == 200 and r.json()["reloaded"] == ["score_table"]
        assert until(lambda: seen.get("2026-01-07", 0) >= 5 or len(statuses) > 400)  # then the new one
    finally:
        stop.set()
        thread.join()
    assert len(statuses) > 10 and set(statuses) == {200}
    assert set(seen) == {"2025-12-31", "2026-01-07"}
    row = post(api, "/score", {"customer_ids": ids[:1]}).json()["scores"][0]
    assert row["clv"] == float(batch["clv"].iloc[0] * 2)
