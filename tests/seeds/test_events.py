"""The seed events carry the effects they were drawn with, and leave the seed transactions as they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.features import build_features, event_features, make_labels, validate_events
from churnclv.seeds.events import TRUTH, make_seed_events
from churnclv.seeds.generate import make_seed_transactions, seed_lapses

AS_OF = pd.Timestamp("2025-09-30")


@pytest.fixture(scope="module")
def seed_frame() -> pd.DataFrame:
    transactions = make_seed_transactions()
    events, rejected = validate_events(make_seed_events())
    assert rejected.empty
    features = build_features(transactions, as_of=AS_OF)
    labels = make_labels(transactions, as_of=AS_OF, horizon_days=90).reindex(features.index)
    return event_features(events, as_of=AS_OF, customers=features.index).join(labels["churned"]).assign(
        active=features["purchases_90d"] > 0)


def test_the_lapse_is_the_last_purchase_of_every_lapsed_customer():
    transactions = make_seed_transactions()
    lapses = seed_lapses()
    lapsed = lapses.loc[np.isfinite(lapses["lapse_day"])]
    day = (pd.Timestamp("2024-01-01") + pd.to_timedelta(lapsed["lapse_day"], unit="D")).dt.normalize()
    last = transactions.loc[transactions["amount"] > 0].groupby("customer_id")["timestamp"].max().dt.normalize()
    assert (last.reindex(lapsed["customer_id"]).to_numpy() == day.to_numpy()).all() and len(lapsed) > 1000


def test_detractors_and_complainers_churn_more_and_engagement_decays(seed_frame):
    """Among the customers who bought in the last 90 days (the long lapsed ones have no recent event at all),
    a detractor's and a complainer's odds of buying nothing in the next 90 days are at least twice the others'."""
    f = seed_frame.loc[seed_frame["active"]]
    odds = lambda mask: f.loc[mask, "churned"].mean() / (1 - f.loc[mask, "churned"].mean())
    detractors, others = f["nps_group"] == -1, f["nps_group"] >= 0
    assert detractors.sum() >= 50 and odds(detractors) >= 2 * odds(others)
    complained = f["complaints_90d"] > 0
    assert complained.sum() >= 50 and odds(complained) >= 2 * odds(~complained)
    f = seed_frame
    churned = f["churned"] == 1
    assert f.loc[churned, "email_open_rate_90d"].mean() < f.loc[~churned, "email_open_rate_90d"].mean() - 0.05
    # never answered: each quarterly survey since the first purchase went unanswered
    lapses = seed_lapses().set_index("customer_id").reindex(f.index)
    as_of_day = (AS_OF - pd.Timestamp("2024-01-01")).days
    surveys = np.arange(0, as_of_day - 14, TRUTH.survey_every_days)
    asked = (surveys[None, :] >= lapses["first_day"].to_numpy()[:, None]).sum(axis=1)
    expected = ((1 - TRUTH.survey_response) ** asked).mean()
    assert abs(f["nps_last"].isna().mean() - expected) < 0.03, (f["nps_last"].isna().mean(), expected)


def test_the_events_are_deterministic():
    pd.testing.assert_frame_equal(make_seed_events(300, seed=3), make_seed_events(300, seed=3))
