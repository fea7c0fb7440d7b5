"""POST /score_transactions with the customers' touchpoints: a model trained with the seed events scores a posted
history and its events exactly as ``churnclv score --events`` scores that customer, and one posted without events
as the batch does without them; bad event rows get the contract's named 422."""

from __future__ import annotations

import asyncio
import math
from datetime import date

import pandas as pd
import pytest

from churnclv.serving.batching import Batcher, Job, score_jobs
from churnclv.serving.model import (
    ServedModel,
    answer_rows,
    posted_columns,
    score_encoded,
    validated,
    validated_events,
)
from churnclv.serving.schemas import Event, Transaction
from churnclv.serving.state import Served, ServingState
from tests.serving.conftest import error_of
from tests.serving.test_campaigns import store  # noqa: F401 - a fresh campaign store for the service
from tests.serving.test_service import history, post

AS_OF = date(2025, 12, 31)


def posted_events(events: pd.DataFrame, customer: str) -> list[dict]:
    """A customer's events as a CRM posts them (all of them: those after as_of too, which are not read)."""
    mine = events.loc[events["customer_id"] == customer]
    return [{"customer_id": r.customer_id, "timestamp": r.timestamp.isoformat(), "kind": r.kind,
             "value": None if math.isnan(r.value) else r.value} for r in mine.itertuples()]


@pytest.fixture()
def events_api(api, trained_with_events):
    """The service serving the model trained with the seed events (``api`` restores the state after the test)."""
    bundle = trained_with_events.bundle
    state = ServingState(api.config())
    state.current = Served(model=ServedModel(bundle, {**bundle.metadata, "version": "events-1"}))
    api.service.state = state
    return api


@pytest.fixture(scope="module")
def batch_with_events(trained_with_events, seed_transactions) -> pd.DataFrame:
    """``churnclv score --events``: the bundle's score table of the whole seed log and its events."""
    t = trained_with_events
    return t.bundle.score(seed_transactions, as_of=t.as_of, events=t.events, explain=True).set_index("customer_id")


@pytest.fixture(scope="module")
def batch_without_events(trained_with_events, seed_transactions) -> pd.DataFrame:
    t = trained_with_events
    return t.bundle.score(seed_transactions, as_of=t.as_of).set_index("customer_id")


def detractors(trained_with_events, batch) -> list[str]:
    """Customers scored by the batch whose last NPS answer by the as-of day is a detractor's."""
    events = trained_with_events.events
    nps = events.loc[(events["kind"] == "nps") & (events["timestamp"] <= pd.Timestamp(AS_OF))]
    last = nps.sort_values("timestamp").groupby("customer_id")["value"].last()
    return [c for c in last.index[last <= 6] if c in batch.index]


def numbers(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("segment", "recommended_action", "drivers")]


def test_a_posted_history_with_its_events_scores_as_churnclv_score_events(events_api, trained_with_events,
                                                                        batch_with_events, seed_transactions):
    events = trained_with_events.events
    chosen = detractors(trained_with_events, batch_with_events)[:2] + batch_with_events.index[[5, 900]].tolist()
    for cid in chosen:
        body = {"as_of": f"{AS_OF}", "transactions": history(seed_transactions, cid, pd.Timestamp(AS_OF)),
                "events": posted_events(events, cid), "explain": True}
        r = post(events_api, "/score_transactions", body)
        assert r.status_code == 200, r.text
        answer = r.json()
        (row,) = answer["scores"]
        want = batch_with_events.loc[cid]
        shown = [c for c in numbers(batch_with_events) if c in row]
        assert {c: row[c] for c in shown} == {c: float(want[c]) for c in shown}, cid
        assert (row["segment"], row["recommended_action"]) == (want["segment"], want["recommended_action"])
        assert [d["feature"] for d in row["drivers"]] == [d["feature"] for d in want["drivers"]]
        mine = events.loc[events["customer_id"] == cid]
        assert answer["events_used"] == int((mine["timestamp"] < pd.Timestamp("2026-01-01")).sum())
    # the events moved the scores: the detractors score otherwise without them
    detractor = chosen[0]
    plain = post(events_api, "/score_transactions", {"as_of": f"{AS_OF}", "transactions":
                                                     history(seed_transactions, detractor, pd.Timestamp(AS_OF))})
    assert plain.json()["scores"][0]["churn_probability"] != batch_with_events.loc[detractor, "churn_probability"]


def test_without_events_posted_a_model_trained_with_them_scores_as_the_batch_without(events_api, batch_without_events,
                                                                                    seed_transactions):
    for cid in batch_without_events.index[[3, 300]]:
        body = {"as_of": f"{AS_OF}", "transactions": history(seed_transactions, cid, pd.Timestamp(AS_OF))}
        for extra in ({}, {"events": []}, {"events": None}):
            r = post(events_api, "/score_transactions", {**body, **extra})
            assert r.status_code == 200, r.text
            (row,) = r.json()["scores"]
            want = batch_without_events.loc[cid]
            shown = [c for c in numbers(batch_without_events) if c in row]
            assert {c: row[c] for c in shown} == {c: float(want[c]) for c in shown}
            assert r.json()["events_used"] == 0


def test_concurrent_requests_with_and_without_events_share_a_pass_and_each_scores_as_alone(trained_with_events,
                                                                                           batch_with_events,
                                                                                           seed_transactions):
    bundle, events = trained_with_events.bundle, trained_with_events.events
    model = ServedModel(bundle, dict(bundle.metadata))
    ids = detractors(trained_with_events, batch_with_events)[:1] + batch_with_events.index[[10, 11]].tolist()
    posted = [[Transaction(**row) for row in history(seed_transactions, cid, pd.Timestamp(AS_OF))] for cid in ids]
    own = [validated_events([Event(**e) for e in posted_events(events, cid)]) for cid in ids]
    borrowed = own[1].assign(customer_id=ids[0])  # another customer's events under the first one's id
    jobs = [Job(model, validated(posted_columns(p), AS_OF)[0], AS_OF, False, e)
            for p, e in ((posted[0], own[0]), (posted[0], borrowed), (posted[0], None), (posted[1] + posted[2], own[1]),
                         (posted[2], pd.concat([own[2], own[0]], ignore_index=True)))]
    together = score_jobs(jobs)
    for job, got in zip(jobs, together):
        alone = score_encoded(model, job.enc, as_of=job.as_of, explain=False, events=job.events)
        assert got == answer_rows(alone, job.enc)[0]  # the same Python floats: to the last digit
    assert together[0][0]["churn_probability"] == batch_with_events.loc[ids[0], "churn_probability"]
    assert together[0][0]["churn_probability"] != together[1][0]["churn_probability"]

    batcher = Batcher()

    async def all_at_once():
        return await asyncio.gather(*(batcher.score(model, p, as_of=AS_OF, explain=False, events=e)
                                      for p, e in [(posted[0], own[0]), (posted[0], None), (posted[1], own[1])] * 3))

    answers = asyncio.run(all_at_once())
    assert batcher.passes < len(answers)
    for k, cid in enumerate([ids[0], ids[0], ids[1]] * 3):
        (row,) = answers[k][0]
        if k % 3 != 1:
            assert row["churn_probability"] == batch_with_events.loc[cid, "churn_probability"]


def test_events_used_counts_the_posted_customers_events_up_to_the_as_of_day(events_api):
    events = [{"customer_id": "a", "timestamp": "2025-01-05", "kind": "email_sent"},
              {"customer_id": 7, "timestamp": "2025-12-31T23:59:59", "kind": "nps", "value": 3},
              {"customer_id": "a", "timestamp": "2026-01-01", "kind": "complaint"},  # after the as-of day
              {"customer_id": "nobody", "timestamp": "2025-02-01", "kind": "visit"}]  # not a posted customer
    body = {"as_of": f"{AS_OF}", "transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 10},
                                                   {"customer_id": 7, "timestamp": "2025-03-01", "amount": 5}],
            "events": events}
    r = post(events_api, "/score_transactions", body)
    assert r.status_code == 200, r.text
    assert r.json()["events_used"] == 2 and {s["customer_id"] for s in r.json()["scores"]} == {"a", "7"}


@pytest.mark.parametrize("event, field, words", [
    ({"customer_id": "a", "timestamp": "2025-02-01", "kind": "nps", "value": 11}, "events.value",
     "of kind 'nps' are not an answer from 0 to 10"),
    ({"customer_id": "a", "timestamp": "2025-02-01", "kind": "csat", "value": "good"}, "events.value",
     "of kind 'csat' are not an answer from 1 to 5"),
    ({"customer_id": "a", "timestamp": "last tuesday", "kind": "visit"}, "events.timestamp", "do not parse as dates"),
    ({"customer_id": "a", "timestamp": "2025-02-01", "kind": " "}, "events.kind", "have an empty kind"),
    ({"customer_id": " ", "timestamp": "2025-02-01", "kind": "visit"}, "events.customer_id", "have an empty id"),
])
def test_bad_event_rows_get_the_contracts_named_422(events_api, event, field, words):
    good = {"customer_id": "a", "timestamp": "2025-01-05", "kind": "email_sent"}
    body = {"as_of": f"{AS_OF}", "transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 10}],
            "events": [good, event]}
    r = post(events_api, "/score_transactions", body)
    assert r.status_code == 422, r.text
    error = error_of(r)
    assert error["code"] == "invalid_events" and error["message"] == "1 problem(s) in the events"
    (detail,) = error["details"]
    assert detail["field"] == field and words in detail["issue"] and "row 2" in detail["issue"]
    assert detail["count"] == 1


def test_a_posted_event_without_kind_is_a_422_naming_the_field(events_api):
    body = {"as_of": f"{AS_OF}", "transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 10}],
            "events": [{"customer_id": "a", "timestamp": "2025-01-05"}]}
    r = post(events_api, "/score_transactions", body)
    assert r.status_code == 422 and error_of(r)["details"][0]["field"] == "events.0.kind"


@pytest.mark.usefixtures("store")
def test_an_unsubscribe_posted_here_leaves_the_suppression_list_alone(api, seed_transactions):
    """Consent is the batch path's job (``churnclv score --events``): scoring a posted unsubscribe suppresses nobody."""
    top = post(api, "/prioritise", {"limit": 3}).json()["customers"][0]["customer_id"]
    body = {"as_of": f"{AS_OF}", "transactions": history(seed_transactions, top, pd.Timestamp(AS_OF)),
            "events": [{"customer_id": top, "timestamp": "2025-12-01", "kind": "unsubscribe"}]}
    r = post(api, "/score_transactions", body)
    assert r.status_code == 200 and r.json()["events_used"] == 1
    after = post(api, "/prioritise", {"limit": 3}).json()
    assert after["customers"][0]["customer_id"] == top and after["summary"]["suppressed"] == 0
