"""The page's JSON endpoints (/segments, /customers, /profit_curve) and its HTML parts, in-process, on the
model trained on the seed data; the words and the chart's scales by hand. The browser tests are in
test_page_browser.py."""

from __future__ import annotations

import csv
import io
from datetime import date
from types import SimpleNamespace

import numpy as np
import pytest

from churnclv.serving.page import chart, words
from tests.serving.conftest import AUTH, error_of


def post(api, path, body):
    return api.client.post(path, json=body, headers=AUTH)


# --- GET /segments --------------------------------------------------------------------------------

def test_segments_are_the_batch_tables_counts_and_totals(api, batch):
    r = api.client.get("/segments", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["customers"] == len(batch) and body["as_of"] == "2025-12-31"
    assert body["clv"] == pytest.approx(batch["clv"].sum()) and body["value_at_risk"] == pytest.approx(batch["value_at_risk"].sum())
    grouped = batch.groupby("segment").agg(customers=("customer_id", "size"), clv=("clv", "sum"),
                                           value_at_risk=("value_at_risk", "sum"), churn=("churn_probability", "mean"))
    assert [s["segment"] for s in body["segments"]] == grouped.sort_values("value_at_risk", ascending=False).index.tolist()
    for s in body["segments"]:
        expected = grouped.loc[s["segment"]]
        assert s["customers"] == expected["customers"]
        assert s["clv"] == pytest.approx(expected["clv"]) and s["value_at_risk"] == pytest.approx(expected["value_at_risk"])
        assert s["churn_probability"] == pytest.approx(expected["churn"])
        assert {s["recommended_action"]} == set(batch.loc[batch["segment"] == s["segment"], "recommended_action"])


def test_segments_needs_a_key(api):
    assert error_of(api.client.get("/segments"))["code"] == "unauthorized"


# --- POST /customers ------------------------------------------------------------------------------

def test_customers_pages_through_a_segment_by_value_at_risk(api, batch):
    at_risk = batch[batch["segment"] == "at_risk"].sort_values("value_at_risk", ascending=False, kind="stable")
    r = post(api, "/customers", {"segment": "at_risk", "offset": 10, "limit": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == len(at_risk) and body["offset"] == 10
    assert [c["customer_id"] for c in body["customers"]] == at_risk["customer_id"].iloc[10:17].tolist()
    everyone = post(api, "/customers", {"limit": 3}).json()
    assert everyone["total"] == len(batch) and everyone["segment"] is None
    assert [c["value_at_risk"] for c in everyone["customers"]] == sorted(batch["value_at_risk"], reverse=True)[:3]
    beyond = post(api, "/customers", {"offset": len(batch)}).json()
    assert beyond["customers"] == [] and beyond["total"] == len(batch)


@pytest.mark.parametrize(("body", "field"), [({"segment": "vip"}, "segment"), ({"limit": 501}, "limit"),
                                              ({"offset": -1}, "offset"), ({"page": 2}, "page")])
def test_customers_names_the_bad_field(api, body, field):
    r = post(api, "/customers", body)
    error = error_of(r)
    assert r.status_code == 422 and field in [d["field"] for d in error["details"]], error


# --- POST /profit_curve ---------------------------------------------------------------------------

def brute_curve(batch, segments, contact_cost, save_rate):
    var = np.sort(batch.loc[batch["segment"].isin(segments), "value_at_risk"].to_numpy())[::-1]
    return np.concatenate([[0.0], save_rate * np.cumsum(var) - contact_cost * np.arange(1, len(var) + 1)])


def test_the_profit_curve_is_exact_and_its_chosen_point_is_the_prioritise_plan(api, batch):
    economics = {"contact_cost": 2.0, "save_rate": 0.15, "segments": ["steady", "at_risk"]}
    curve = post(api, "/profit_curve", {**economics, "limit": 120, "points": 2000}).json()
    plan = post(api, "/prioritise", {**economics, "limit": 120}).json()["summary"]
    assert curve["chosen"] == {"contacts": plan["returned"], "expected_net_value": plan["expected_value_saved_returned"]}
    assert curve["best"] == {"contacts": plan["qualifying"], "expected_net_value": plan["expected_value_saved_qualifying"]}
    expected = brute_curve(batch, economics["segments"], 2.0, 0.15)
    contacts = [p["contacts"] for p in curve["points"]]
    assert contacts[0] == 0 and contacts[-1] == curve["customers"] == len(expected) - 1
    assert contacts == sorted(set(contacts))
    np.testing.assert_allclose([p["expected_net_value"] for p in curve["points"]], expected[contacts], rtol=1e-9, atol=1e-6)
    assert max(p["expected_net_value"] for p in curve["points"]) == pytest.approx(expected.max())


def test_the_profit_curve_keeps_to_its_point_budget_and_the_default_segments(api, batch):
    curve = post(api, "/profit_curve", {"points": 12}).json()
    contactable = batch.loc[batch["recommended_action"] != "no_contact", "segment"].unique()
    assert len(curve["points"]) <= 12 and curve["customers"] == batch["segment"].isin(contactable).sum()
    best = max(curve["points"], key=lambda p: p["expected_net_value"])
    # no campaign measured yet: every segment plans with the prior's mean save rate, 0.30, and says so
    assert {(r["source"], round(r["rate"], 9)) for r in curve["save_rates"]} == {("assumed", 0.3)}
    assert best["expected_net_value"] == pytest.approx(brute_curve(batch, contactable, 1.0, 0.3)[best["contacts"]])


@pytest.mark.parametrize(("body", "field"), [({"points": 1}, "points"), ({"save_rate": 0}, "save_rate"),
                                              ({"segments": ["vip"]}, "segments"), ({"contact_cost": -1}, "contact_cost"),
                                              ({"contact_cost": 1.5e308}, "contact_cost")])  # -inf at 2 contacts
def test_profit_curve_names_the_bad_field(api, body, field):
    r = post(api, "/profit_curve", body)
    error = error_of(r)
    assert r.status_code == 422 and field in [d["field"] for d in error["details"]], error


# --- the page's HTML parts ------------------------------------------------------------------------

def test_the_shell_and_its_files_are_public_and_the_parts_need_the_key(api):
    shell = api.client.get("/app")
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    assert 'type="password"' in shell.text and "<script src=\"/app/static/app.js" in shell.text
    policy = shell.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy  # only the page's own files run
    assert "http://" not in shell.text and "https://" not in shell.text  # nothing from another site
    for name, media in (("app.js", "text/javascript"), ("app.css", "text/css")):
        r = api.client.get(f"/app/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media) and "http" not in r.text
    assert error_of(api.client.get("/app/static/secret.py"))["code"] == "not_found"
    for part in ("/app/overview", "/app/plan", "/app/customers", "/app/customer?id=C00001", "/app/plan.csv"):
        assert api.client.get(part).status_code == 401, part


def test_the_overview_says_what_is_served_how_good_and_that_the_scores_are_stale(api, trained_home):
    html = api.client.get("/app/overview", headers=AUTH).text
    assert f"churn-clv v{trained_home.version}" in html and "2025-12-31" in html
    metrics = api.client.get("/model", headers=AUTH).json()["metrics"]
    assert f"caught {metrics['lift_top_decile']:.1f}× as many churners as random" in html
    assert f'id="grade">{words.band(metrics["roc_auc"])[0]}<' in html  # graded by the ranking figure beside it
    assert 'id="stale-banner"' in html  # 2025-12-31 is more than 90 days ago


def test_the_plan_part_is_the_prioritise_answer_a_page_at_a_time(api):
    query = "contact_cost=1&save_rate=10&plan_by=budget&budget=60&contacts=5&segments=steady&segments=at_risk"
    html = api.client.get(f"/app/plan?{query}&page=2", headers=AUTH).text
    plan = post(api, "/prioritise", {"limit": 60, "contact_cost": 1, "save_rate": 0.1,
                                     "segments": ["steady", "at_risk"]}).json()["customers"]
    shown = [c["customer_id"] for c in plan[25:50]]
    assert all(f'data-customer="{cid}"' in html for cid in shown)
    assert f'data-customer="{plan[24]["customer_id"]}"' not in html and "26–50 of 60" in html


def test_a_budget_buys_its_worth_of_contacts_up_to_the_prioritise_limit():
    from churnclv.serving.page.forms import PlanForm

    assert PlanForm(plan_by="budget", budget=10, contact_cost=3).limit == 3
    assert PlanForm(plan_by="budget", budget=0.9, contact_cost=0.3).limit == 3  # not 2 by rounding
    assert PlanForm(plan_by="budget", budget=1e308, contact_cost=1e-300).limit == 10_000
    assert PlanForm(plan_by="budget", budget=5, contact_cost=0).limit == 10_000
    assert PlanForm(contacts=7, budget=5).limit == 7 and PlanForm().limit == 100


def test_the_csv_is_the_whole_prioritise_list(api):
    query = "contact_cost=0.5&save_rate=12.5&plan_by=contacts&contacts=40"
    r = api.client.get(f"/app/plan.csv?{query}", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    plan = post(api, "/prioritise", {"limit": 40, "contact_cost": 0.5, "save_rate": 0.125}).json()["customers"]
    assert len(rows) == len(plan) == 40
    for row, expected in zip(rows, plan):
        assert row["customer_id"] == expected["customer_id"] and int(row["rank"]) == expected["rank"]
        assert float(row["expected_value_saved"]) == expected["expected_value_saved"]
        assert row["segment"] == expected["segment"]


@pytest.mark.parametrize(("query", "field"), [("save_rate=150", "save_rate"), ("contact_cost=x", "contact_cost"),
                                               ("plan_by=budget", "budget"), ("plan_by=budget&budget=1&contact_cost=5", "budget"),
                                               ("contacts=0", "contacts"), ("segments=vip", "segments"), ("colour=red", "colour"),
                                               ("contact_cost=1e300", "contact_cost")])
def test_a_bad_plan_names_the_field(api, query, field):
    r = api.client.get(f"/app/plan?{query}", headers=AUTH)
    error = error_of(r)
    assert r.status_code == 422 and field in [d["field"] for d in error["details"]], error


def test_the_customer_part_speaks_of_drivers_and_refuses_unknown_ids(api, batch):
    cid = batch.sort_values("value_at_risk")["customer_id"].iloc[-1]
    html = api.client.get(f"/app/customer?id={cid}", headers=AUTH).text
    assert f"Customer {cid}" in html and ("raises the churn risk" in html or "lowers the churn risk" in html)
    r = api.client.get("/app/customer?id=nobody", headers=AUTH)
    assert r.status_code == 404 and error_of(r)["details"][0]["field"] == "id"


# --- words and scales -----------------------------------------------------------------------------

def test_money_percent_and_labels():
    assert words.money(1234.5) == "1,234.50" and words.money(-2.5, 0) == "−2" and words.money(float("nan")) == "–"
    assert words.money(-0.001) == "0.00"  # no minus sign on a zero
    assert words.percent(0.123) == "12%" and words.percent(0.5, 1) == "50.0%" and words.percent(None) == "–"
    assert words.label("high_value_at_risk") == "High value at risk"


@pytest.mark.parametrize(("auc", "letter"), [(0.9, "A"), (0.80, "B"), (0.7, "C"), (0.6, "D"),
                                           (0.52, "E")])
def test_grades_follow_the_auc_bands(auc, letter):
    grade = words.grade({"roc_auc": auc, "lift_top_decile": 1.5})
    assert grade.letter == letter and "1.5×" in grade.sentence
    assert words.grade({"lift_top_decile": 3.0}).letter == "?"  # the lift alone grades nothing


def test_the_lift_is_set_against_the_best_possible_at_the_churn_rate():
    """CDNOW: 88% churn, so no tenth can hold more than 1/0.88 = 1.14× the average."""
    grade = words.grade({"roc_auc": 0.81, "lift_top_decile": 1.1}, churn_rate=0.88)
    assert grade.letter == "B" and grade.best_lift == pytest.approx(1 / 0.88)
    assert "the best possible is 1.14×" in grade.sentence and "73% of the possible gain" in grade.sentence  # 0.1/0.136
    assert words.best_lift(0.05) == 10.0 and words.best_lift(0.0) is None  # a tenth can hold all of them at most


def test_no_segment_name_contradicts_its_figures():
    assert words.segment_name("steady", 0.85, 0.88) == "Less at risk than most"  # CDNOW's 'steady' at 85%
    assert words.segment_name("steady", 0.60, 0.50) == "Middle of the pack"
    assert words.segment_name("loyal", 0.20, 0.50) == "Loyal" and words.segment_name("steady", 0.3, 0.5) == "Steady"
    assert words.segment_name("at_risk", 0.40, 0.50) == "Middle of the pack"
    assert words.segment_name("at_risk", 0.95, 0.88) == "At risk"
    assert words.segment_name("high_value_at_risk", 0.66, 0.86) == "High value at risk"  # CDNOW: risky, if not the most


def test_one_name_per_segment_for_every_view():
    """The names every view uses: the log's churn rate weighted by customers; two segments never read the same."""
    rows = [SimpleNamespace(segment=k, customers=n, churn_probability=p, recommended_action=a) for k, n, p, a in (
        ("steady", 600, 0.85, "newsletter"), ("at_risk", 300, 0.97, "automated_winback"),
        ("loyal", 100, 0.55, "no_contact"))]
    assert words.churn_rate(rows) == pytest.approx((600 * 0.85 + 300 * 0.97 + 100 * 0.55) / 1000)  # 0.856
    assert words.segment_names(rows) == {"steady": "Less at risk than most (newsletter)", "at_risk": "At risk",
                                         "loyal": "Less at risk than most (no contact)"}
    assert words.segment_names(rows[:2]) == {"steady": "Less at risk than most", "at_risk": "At risk"}
    assert words.churn_rate([]) is None and words.segment_names([]) == {}


def test_scores_are_stale_past_the_horizon_only():
    assert words.stale_days("2025-12-31", 90, date(2026, 3, 31)) is None  # 90 days: still within
    assert words.stale_days("2025-12-31", 90, date(2026, 4, 1)) == 91
    assert words.stale_days("unknown", 90, date(2026, 4, 1)) is None


def test_drivers_in_words():
    assert words.driver_text("days_since_last", 212.0, 0.3) == "Days since the last purchase: 212 — raises the churn risk"
    assert words.driver_text("return_rate", 0.04, -0.1) == "Share of spend returned: 4% — lowers the churn risk"
    assert words.driver_text("spend_90d", 1500.0, 0.1).startswith("Spend in the last 90 days: 1,500.00")
    assert words.driver_text("new_feature", None, 0.1) == "New feature: unknown — raises the churn risk"


def test_chart_ticks_are_round_and_cover_the_range():
    assert chart.ticks(0, 2241) == [0, 500, 1000, 1500, 2000, 2500]
    assert chart.ticks(-120, 4208)[0] <= -120 and chart.ticks(-120, 4208)[-1] >= 4208
    assert chart.short(2_500_000) == "2.5M" and chart.short(1500) == "1.5k" and chart.short(-200) == "−200"
