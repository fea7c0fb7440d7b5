"""Training with touchpoints: the models learn from them, the run says what they added, and a model trained
without them scores exactly as before, events or not."""

from __future__ import annotations

import pandas as pd
import pytest

from churnclv.features import validate_events
from churnclv.features.events import EVENT_FEATURES
from churnclv.seeds.events import make_seed_events
from churnclv.training.pipeline import train
from tests.conftest import SEED_AS_OF, fast_config


@pytest.fixture(scope="module")
def seed_events() -> pd.DataFrame:
    return validate_events(make_seed_events())[0]


@pytest.fixture(scope="module")
def with_events(seed_transactions, seed_events):
    return train(seed_transactions, as_of=SEED_AS_OF, config=fast_config(), events=seed_events)


def test_a_model_trained_without_events_scores_the_same_with_them(seed_transactions, seed_events):
    bundle = train(seed_transactions, as_of=SEED_AS_OF, config=fast_config()).bundle
    assert not set(EVENT_FEATURES) & set(bundle.metadata["features"]) and "events" not in bundle.metadata
    pd.testing.assert_frame_equal(bundle.score(seed_transactions, as_of=SEED_AS_OF, events=seed_events),
                                  bundle.score(seed_transactions, as_of=SEED_AS_OF))


def test_the_churn_model_learns_from_events_and_the_run_records_both_backtests(with_events):
    meta = with_events.bundle.metadata
    assert set(EVENT_FEATURES) <= set(meta["features"])
    with_auc = meta["churn_rankings"]["lightgbm"]
    without_auc = meta["without_events"]["churn_rankings"]["lightgbm"]
    assert with_auc >= without_auc + 0.02, (with_auc, without_auc)  # the seed events carry the lapse
    assert meta["without_events"]["churn_rankings"]["bgnbd"] == meta["churn_rankings"]["bgnbd"]  # same window
    kinds = meta["events"]["kinds"]
    assert set(kinds) == {"nps", "csat", "support_contact", "complaint", "email_sent", "email_open", "email_click",
                          "unsubscribe", "visit"}
    assert 0.5 < kinds["nps"]["share"] < 0.9 and kinds["email_sent"]["share"] > 0.95  # a quarterly survey


def test_events_of_unknown_customers_and_after_the_as_of_day_change_nothing(seed_transactions, seed_events, with_events):
    stray = pd.DataFrame({"customer_id": ["NOBODY", "C00001"], "timestamp": pd.to_datetime(["2025-06-01", "2026-01-05"]),
                          "kind": ["visit", "complaint"], "value": [float("nan")] * 2})
    bundle = with_events.bundle
    more = pd.concat([seed_events, stray], ignore_index=True)
    pd.testing.assert_frame_equal(bundle.score(seed_transactions, as_of=SEED_AS_OF, events=more),
                                  bundle.score(seed_transactions, as_of=SEED_AS_OF, events=seed_events))


@pytest.mark.slow
def test_on_the_next_90_days_the_events_lift_the_ranking_above_bgnbd(seed_transactions, seed_events):
    from churnclv.training.realfuture import judge

    judged = judge(seed_transactions, as_of="2025-09-30", horizon_days=90, config=fast_config(), events=seed_events)
    best, auc = judged.best_simple
    assert judged.metrics["churnclv"]["roc_auc"] >= auc + 0.02, (judged.metrics["churnclv"]["roc_auc"], best, auc)


def test_the_drivers_of_detractors_still_buying_name_their_nps_answer(with_events, seed_transactions, seed_events):
    """For a customer who still buys, a detractor's answer is the news: it is among their top 3 churn drivers."""
    from churnclv.features import build_features

    bundle = with_events.bundle
    scores = bundle.score(seed_transactions, as_of=SEED_AS_OF, events=seed_events, explain=True).set_index("customer_id")
    features = build_features(seed_transactions, as_of=SEED_AS_OF, events=seed_events)
    detractors = features.index[(features["nps_group"] == -1) & (features["purchases_90d"] > 0)]
    named = scores.loc[detractors, "drivers"].map(lambda drivers: any(d["feature"].startswith("nps") for d in drivers))
    assert len(detractors) >= 50 and named.mean() >= 0.75, (len(detractors), named.mean())
