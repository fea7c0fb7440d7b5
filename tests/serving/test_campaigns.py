"""The campaign, suppression and erasure endpoints on the served seed scores, each on a fresh store.

Each role is refused what it may not do; suppressed and forgotten customers appear in no plan, control
list, CSV, preview or score lookup; the erasure receipt matches what was removed; the audit trail names
the key, never the key itself.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from churnclv.campaigns import audit_trail, measure_effect, open_store, record_effect
from churnclv.serving.auth import key_name
from churnclv.serving.targeting import Targeting
from tests.serving.conftest import AUTH, KEY, PLAN_KEY, READ_KEY, error_of

ROLE = {"read": {"Authorization": f"Bearer {READ_KEY}"}, "plan": {"Authorization": f"Bearer {PLAN_KEY}"},
        "admin": AUTH}


@pytest.fixture()
def store(api, tmp_path, monkeypatch):
    """A fresh campaign store and a copy of the score table for the service; keys of every role."""
    url = f"sqlite:///{tmp_path / 'churnclv.db'}"
    scores = tmp_path / "scores" / "latest.parquet"
    scores.parent.mkdir()
    shutil.copy(api.trained.scores_path, scores)
    from churnclv.serving.state import ServingState

    state = ServingState(api.config(scores_path=scores))
    state.refresh(force=True)
    original_targeting = api.service.targeting
    api.service.state, api.service.targeting = state, Targeting(url)
    monkeypatch.setattr(api.service, "score_files", lambda: [scores])
    yield open_store(url), scores
    api.service.targeting.close()
    api.service.targeting = original_targeting


def post(api, path, body, role="admin"):
    return api.client.post(path, json=body, headers=ROLE[role])


def test_a_plan_is_recorded_with_its_control_group_and_repeats_return_it(api, store):
    body = {"name": "winback-1", "limit": 200, "contact_cost": 1.0}
    first = post(api, "/campaigns", body, "plan")
    assert first.status_code == 200, first.text
    made = first.json()
    assert made["created"] and made["campaign"]["requested_by"] == "marketing"
    contacts, controls = made["contacts"], made["controls"]
    assert len(contacts) + len(controls) == 200 and 10 <= len(controls) <= 30
    assert not {c["customer_id"] for c in contacts} & {c["customer_id"] for c in controls}
    assert {r["source"] for r in made["plan"]["save_rates"]} == {"assumed"}
    assert "more outcomes" in made["plan"]["uplift"]
    again = post(api, "/campaigns", body, "plan").json()
    assert not again["created"] and again["controls"] == controls
    clash = post(api, "/campaigns", {**body, "control_share": 0.2}, "plan")
    assert clash.status_code == 409 and "winback-1" in error_of(clash)["message"]
    listed = api.client.get("/campaigns", headers=ROLE["plan"]).json()["campaigns"]
    assert [c["name"] for c in listed] == ["winback-1"] and listed[0]["status"] == "running"
    csv = api.client.get("/campaigns/winback-1/controls.csv", headers=ROLE["plan"])
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == len(controls) + 1
    trail = audit_trail(store[0])
    assert set(trail["who"]) == {"marketing"} and set(trail["action"]) == {"create_campaign", "export"}
    assert not trail["detail"].astype(str).str.contains(PLAN_KEY).any()


@pytest.mark.parametrize(("role", "method", "path", "body"), [
    ("read", "post", "/campaigns", {"name": "x"}),
    ("read", "get", "/campaigns", None),
    ("read", "get", "/campaigns/x/contacts.csv", None),
    ("read", "get", "/app/plan.csv", None),
    ("read", "post", "/reload", {}),
    ("plan", "post", "/reload", {}),
    ("plan", "post", "/suppressions", {"customer_ids": ["C00001"]}),
    ("plan", "delete", "/suppressions/C00001", None),
    ("plan", "delete", "/customers/C00001", None),
    ("read", "delete", "/customers/C00001", None),
])
def test_each_role_is_refused_what_it_may_not_do(api, store, role, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    r = getattr(api.client, method)(path, headers=ROLE[role], **kwargs) if method != "delete" else \
        api.client.delete(path, headers=ROLE[role])
    assert r.status_code == 403, r.text
    assert role in error_of(r)["message"]


def test_a_read_key_still_scores_and_previews(api, store):
    assert post(api, "/score", {"customer_ids": ["C00001"]}, "read").status_code == 200
    assert post(api, "/prioritise", {"limit": 3}, "read").status_code == 200


def _top(api, n=5):
    return [c["customer_id"] for c in post(api, "/prioritise", {"limit": n}).json()["customers"]]


def test_suppressed_customers_are_in_no_plan_control_list_csv_or_preview(api, store):
    top = _top(api, 40)
    gone = top[:3] + top[-3:]
    r = post(api, "/suppressions", {"customer_ids": gone})
    assert r.status_code == 200 and r.json() == {"customers": 6, "added": 6}
    preview = post(api, "/prioritise", {"limit": 40}).json()
    assert not set(gone) & {c["customer_id"] for c in preview["customers"]}
    assert preview["summary"]["suppressed"] == 6
    page_csv = api.client.get("/app/plan.csv?plan_by=contacts&contacts=40", headers=ROLE["plan"]).text
    assert not any(g in page_csv for g in gone)
    exported = audit_trail(store[0]).query("action == 'export'")
    assert list(exported["who"]) == ["marketing"] and exported["detail"].iloc[0]["rows"] == 40  # others fill the places
    made = post(api, "/campaigns", {"name": "after-optout", "limit": 40}).json()
    members = {c["customer_id"] for c in made["contacts"] + made["controls"]}
    assert not set(gone) & members
    for group in ("contacts", "controls"):
        text = api.client.get(f"/campaigns/after-optout/{group}.csv", headers=AUTH).text
        assert not any(g in text for g in gone)
    back = api.client.delete(f"/suppressions/{gone[0]}", headers=AUTH).json()
    assert back == {"customer_id": gone[0], "removed": True}
    assert gone[0] in _top(api, 40)


def test_forgetting_a_customer_removes_them_everywhere_and_the_receipt_says_where(api, store):
    engine, scores = store
    top = _top(api, 60)
    made = post(api, "/campaigns", {"name": "before-erasure", "limit": 60}).json()
    who = made["controls"][0]["customer_id"]
    r = api.client.delete(f"/customers/{who}", headers=AUTH)
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["score_files"] == {str(scores): 1} and receipt["campaign_members"] == {"before-erasure": 1}
    assert receipt["rows_removed"] == 2 and receipt["suppressed"] == 1
    assert who not in set(pd.read_parquet(scores)["customer_id"])
    assert post(api, "/score", {"customer_ids": [who]}).json()["unknown_ids"] == [who]
    assert who not in _top(api, 60) and who in top
    detail = api.client.get("/campaigns/before-erasure", headers=AUTH).json()
    assert detail["n_control"] == len(made["controls"])  # the recorded counts stay
    text = api.client.get("/campaigns/before-erasure/controls.csv", headers=AUTH).text
    assert who not in text and len(text.strip().splitlines()) == len(made["controls"])
    again = api.client.delete(f"/customers/{who}", headers=AUTH).json()
    assert again["rows_removed"] == 0 and again["suppressed"] == 0
    assert list(audit_trail(engine).query("action == 'forget'")["who"]) == [key_name(KEY)] * 2


def test_a_measured_campaign_teaches_the_rates_the_next_plan_uses(api, store, seed_transactions):
    engine, _ = store
    made = post(api, "/campaigns", {"name": "past", "limit": 400, "campaign_date": "2025-09-01",
                                    "window_days": 60, "control_share": 0.5}).json()
    members = pd.DataFrame(made["contacts"] + made["controls"]).assign(
        group=["treated"] * len(made["contacts"]) + ["control"] * len(made["controls"]))
    effect = measure_effect(members, seed_transactions, campaign_date=pd.Timestamp("2025-09-01").date(),
                            window_days=60)
    assert effect.finished
    record_effect(engine, "past", effect, who="test")
    detail = api.client.get("/campaigns/past", headers=AUTH).json()
    assert detail["status"] == "finished" and detail["effect"]["segments"][-1]["segment"] == "all"
    overall = detail["effect"]["segments"][-1]
    assert detail["effect"]["contact_cost"] == 1.0  # the request's default
    assert overall["value_per_contact"] == pytest.approx(overall["spend_diff"] - 1.0)
    assert overall["value_total"] == pytest.approx(overall["value_per_contact"] * overall["n_treated"])
    low, high = overall["retention_diff_low"], overall["retention_diff_high"]
    assert low < overall["retention_diff"] < high
    rates = post(api, "/prioritise", {"limit": 5}).json()["summary"]["save_rates"]
    assert "measured" in {r["source"] for r in rates}


def test_the_store_unreachable_is_a_503_naming_it_and_scores_still_answer(api, store, tmp_path):
    api.service.targeting = Targeting(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}")
    r = api.client.get("/campaigns", headers=AUTH)
    assert r.status_code == 503 and "folder" in error_of(r)["message"]
    assert post(api, "/score", {"customer_ids": ["C00001"]}).status_code == 200
    r = post(api, "/prioritise", {"limit": 3})
    assert r.status_code == 503 and "suppression list" in error_of(r)["message"]


def test_the_page_records_a_campaign_lists_it_and_shows_its_lists_and_rates(api, store):
    query = "name=page-made&control_share=20&contacts=100&contact_cost=1&save_rate="
    made = api.client.post("/app/campaigns/create", json={"query": query}, headers=ROLE["plan"])
    assert made.status_code == 200, made.text
    assert "Recorded." in made.text and "/campaigns/page-made/controls.csv" in made.text
    listed = api.client.get("/app/campaigns", headers=ROLE["plan"])
    assert listed.status_code == 200 and "page-made" in listed.text and "running" in listed.text
    assert api.client.get("/app/campaigns", headers=ROLE["read"]).status_code == 403
    plan = api.client.get("/app/plan?plan_by=contacts&contacts=10", headers=ROLE["read"])
    assert "Where each segment&#39;s save rate comes from" in plan.text or "save rate comes from" in plan.text
    assert "assumed: the prior Beta(6, 14)" in plan.text and "more outcomes" in plan.text
    bad = api.client.post("/app/campaigns/create", json={"query": "name=&control_share=150"}, headers=ROLE["plan"])
    assert bad.status_code == 422 and {d["field"] for d in error_of(bad)["details"]} >= {"control_share"}


def test_the_page_form_sets_the_global_holdout_whose_customers_are_kept_out_and_counted(api, store):
    from churnclv.campaigns import campaign_members, in_global_holdout

    plan = post(api, "/prioritise", {"limit": 300, "contact_cost": 1.0}, "plan").json()["customers"]
    ids = [c["customer_id"] for c in plan]
    held = {i for i, h in zip(ids, in_global_holdout(ids, share=0.2)) if h}
    assert 30 <= len(held) <= 90  # about a fifth of them
    query = "name=with-holdout&control_share=10&holdout_share=20&contacts=300&contact_cost=1"
    made = api.client.post("/app/campaigns/create", json={"query": query}, headers=ROLE["plan"])
    assert made.status_code == 200, made.text
    assert f"{len(held)} in the global holdout (20% of all customers)" in made.text
    detail = api.client.get("/campaigns/with-holdout", headers=ROLE["plan"]).json()
    assert detail["holdout_share"] == 0.2 and detail["n_held_out"] == len(held)
    members = campaign_members(store[0], "with-holdout")
    assert set(members["customer_id"]) == set(ids) - held  # contacts and controls alike: the holdout is in neither
    bad = api.client.post("/app/campaigns/create", json={"query": "name=x&holdout_share=100"}, headers=ROLE["plan"])
    assert bad.status_code == 422 and {d["field"] for d in error_of(bad)["details"]} == {"holdout_share"}
