"""The measured effect, by hand on a tiny log, and its intervals' edges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from churnclv.campaigns.effect import OVERALL, measure_effect, member_outcomes, retention_interval
from churnclv.campaigns.errors import CampaignInputError

DAY = dt.date(2025, 1, 1)
MEMBERS = pd.DataFrame({
    "customer_id": ["a", "b", "c", "d", "e", "f"],
    "group": ["treated", "treated", "control", "treated", "control", "control"],
    "segment": ["x", "x", "x", "y", "y", "y"],
})
LOG = pd.DataFrame({
    "customer_id": ["a", "a", "b", "c", "d", "e", "zz"],
    "timestamp": pd.to_datetime(["2025-01-01 10:00", "2025-01-02", "2025-01-05", "2025-01-31 23:59",
                                 "2025-02-01", "2025-01-10", "2025-03-01"], format="ISO8601"),
    "amount": [10.0, 5.0, -3.0, 7.0, 100.0, 0.0, 1.0],
})


def test_member_outcomes_by_hand():
    """Window (Jan 1, Jan 31]: a's Jan 1 order is the campaign day (out), d's Feb 1 order is after it;
    b only returned goods (not retained, spend -3); e's zero-amount order counts as a purchase."""
    outcomes = member_outcomes(MEMBERS, LOG, campaign_date=DAY, window_days=30)
    assert outcomes["retained"].tolist() == [True, False, True, False, True, False]
    assert outcomes["spend"].tolist() == [5.0, -3.0, 7.0, 0.0, 0.0, 0.0]


def test_effect_by_hand():
    effect = measure_effect(MEMBERS, LOG, campaign_date=DAY, window_days=30, contact_cost=0.5)
    table = effect.table.set_index("segment")
    assert table.index.tolist() == ["x", "y", OVERALL]
    x, y, everyone = table.loc["x"], table.loc["y"], table.loc[OVERALL]
    assert (x["n_treated"], x["n_control"], x["retained_treated"], x["retained_control"]) == (2, 1, 1, 1)
    assert x["retention_diff"] == pytest.approx(0.5 - 1.0) and y["retention_diff"] == pytest.approx(0.0 - 0.5)
    assert x["spend_per_treated"] == pytest.approx((5 - 3) / 2) and x["spend_per_control"] == pytest.approx(7.0)
    assert x["value_per_contact"] == pytest.approx(1.0 - 7.0 - 0.5) and x["value_total"] == pytest.approx(-6.5 * 2)
    assert everyone["retention_diff"] == pytest.approx(1 / 3 - 2 / 3)
    assert everyone["spend_diff"] == pytest.approx(2 / 3 - 7 / 3)
    assert everyone["retained_extra"] == pytest.approx(-1.0)
    assert effect.finished and effect.data_through == dt.date(2025, 3, 1) and effect.window_end == dt.date(2025, 1, 31)


def test_the_window_is_over_only_when_the_log_reaches_its_last_day():
    until_jan_30 = LOG.loc[LOG["timestamp"] < "2025-01-31"]
    assert not measure_effect(MEMBERS, until_jan_30, campaign_date=DAY, window_days=30).finished
    until_jan_31 = LOG.loc[LOG["timestamp"] < "2025-02-01"]
    assert measure_effect(MEMBERS, until_jan_31, campaign_date=DAY, window_days=30).finished


def test_constant_spends_give_a_point_interval_and_the_cost_shifts_it():
    members = pd.DataFrame({"customer_id": list("abcdef"), "group": ["treated"] * 4 + ["control"] * 2,
                            "segment": "s"})
    log = pd.DataFrame({"customer_id": list("abcdef"), "timestamp": pd.Timestamp("2025-01-15"),
                        "amount": [10.0] * 4 + [4.0] * 2})
    row = measure_effect(members, log, campaign_date=DAY, window_days=30, contact_cost=1.5).table.iloc[0]
    assert (row["spend_diff_low"], row["spend_diff"], row["spend_diff_high"]) == (6.0, 6.0, 6.0)
    assert (row["value_per_contact_low"], row["value_per_contact_high"]) == (4.5, 4.5)


def test_the_retention_interval_matches_the_normal_approximation_for_large_groups():
    rng = np.random.default_rng(0)
    low, high = retention_interval(4_500, 9_000, 400, 1_000, interval=0.9, draws=200_000, rng=rng)
    p_t, p_c = 4_501 / 9_002, 401 / 1_002  # posterior means under Beta(1, 1)
    se = np.sqrt(p_t * (1 - p_t) / 9_003 + p_c * (1 - p_c) / 1_003)
    z = norm.ppf(0.95)
    assert low == pytest.approx(p_t - p_c - z * se, abs=2e-3) and high == pytest.approx(p_t - p_c + z * se, abs=2e-3)


def test_the_same_seed_gives_the_same_intervals_and_an_empty_group_gives_none():
    one = measure_effect(MEMBERS, LOG, campaign_date=DAY, window_days=30, seed=3).table
    pd.testing.assert_frame_equal(one, measure_effect(MEMBERS, LOG, campaign_date=DAY, window_days=30, seed=3).table)
    treated_only = MEMBERS.assign(group="treated")
    row = measure_effect(treated_only, LOG, campaign_date=DAY, window_days=30).table.iloc[-1]
    assert row["n_control"] == 0 and np.isnan(row["retention_diff"]) and np.isnan(row["spend_diff_low"])


def test_bad_members_are_named():
    with pytest.raises(CampaignInputError, match="group other than"):
        measure_effect(MEMBERS.assign(group="held"), LOG, campaign_date=DAY, window_days=30)
    with pytest.raises(CampaignInputError, match="segment"):
        measure_effect(MEMBERS.drop(columns="segment"), LOG, campaign_date=DAY, window_days=30)
