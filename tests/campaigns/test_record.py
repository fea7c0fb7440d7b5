"""Recorded measurements: once per campaign and data date, read back as the input of the save rates."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from churnclv.campaigns.create import CampaignRequest, create_campaign
from churnclv.campaigns.effect import measure_effect
from churnclv.campaigns.errors import CampaignNotFoundError
from churnclv.campaigns.rates import learn_save_rates
from churnclv.campaigns.read import measurements
from churnclv.campaigns.record import record_effect
from churnclv.seeds.generate import simulate_campaign


def test_a_seeded_campaign_is_recorded_measured_and_learned_from(engine):
    sim = simulate_campaign(2_000, seed=4)
    day = sim.campaign_date.date()
    created = create_campaign(engine, CampaignRequest("seed-autumn", control_share=0.1), sim.members,
                              requested_by="seed", campaign_date=day)
    members = created.members  # the store's own groups (hash), not the simulator's
    effect = measure_effect(members, sim.transactions, campaign_date=day, window_days=90)
    assert record_effect(engine, "seed-autumn", effect, who="analyst") == 4
    assert record_effect(engine, "seed-autumn", effect, who="analyst") == 4  # a repeat adds nothing
    stored = measurements(engine, finished_only=True)
    assert len(stored) == 4 and set(stored["campaign"]) == {"seed-autumn"}
    assert stored["data_through"].iloc[0] == effect.data_through
    pd.testing.assert_frame_equal(
        stored[["segment", "n_treated", "retained_control"]].reset_index(drop=True),
        effect.outcomes("seed-autumn")[["segment", "n_treated", "retained_control"]].reset_index(drop=True))
    pd.testing.assert_frame_equal(learn_save_rates(stored), learn_save_rates(effect.outcomes("seed-autumn")))
    with pytest.raises(CampaignNotFoundError):
        record_effect(engine, "nope", effect, who="analyst")


def test_only_the_latest_data_date_counts_by_default(engine, selected):
    create_campaign(engine, CampaignRequest("c", control_share=0.5), selected, requested_by="a",
                    campaign_date=dt.date(2026, 1, 1))
    members = create_campaign(engine, CampaignRequest("c", control_share=0.5), selected, requested_by="a").members
    for last in ("2026-01-20", "2026-02-15"):
        log = pd.DataFrame({"customer_id": members["customer_id"].iloc[:50], "timestamp": pd.Timestamp(last),
                            "amount": 5.0})
        record_effect(engine, "c", measure_effect(members, log, campaign_date=dt.date(2026, 1, 1), window_days=30),
                      who="a")
    assert set(measurements(engine)["data_through"]) == {dt.date(2026, 2, 15)}
    assert len(measurements(engine, latest_only=False)) == 2 * members["segment"].nunique()
    assert measurements(engine, finished_only=True)["finished"].all()
