"""Save rates: the pooling rule by hand, the prior when nothing is measured, harm named."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import beta

from churnclv.campaigns.rates import PRIOR, learn_save_rates


def _row(campaign, segment, n_t, x_t, n_c, x_c, finished=True):
    return {"campaign": campaign, "segment": segment, "finished": finished, "n_treated": n_t,
            "retained_treated": x_t, "n_control": n_c, "retained_control": x_c}


def test_the_pooling_rule_by_hand():
    """c1: r_c = 20/50 = 0.4, trials = 100·0.6 = 60, saved = 50 − 40 = 10;
    c2: r_c = 10/20 = 0.5, trials = 40·0.5 = 20, saved = 26 − 20 = 6; pooled 16 of 80.
    Posterior Beta(6 + 16, 14 + 64) = Beta(22, 78): mean 0.22. c3 is unfinished and skipped."""
    outcomes = pd.DataFrame([_row("c1", "x", 100, 50, 50, 20), _row("c2", "x", 40, 26, 20, 10),
                             _row("c3", "x", 500, 500, 50, 0, finished=False)])
    rates = learn_save_rates(outcomes, segments=["x", "y"]).set_index("segment")
    x = rates.loc["x"]
    assert (x["trials"], x["saved"], x["campaigns"], x["n"]) == (pytest.approx(80), pytest.approx(16), 2, 210)
    assert x["rate"] == pytest.approx(0.22) and x["measured_rate"] == pytest.approx(0.2)
    # the interval also carries the control groups' noise: wider than Beta(22, 78)'s own
    assert x["rate_low"] < beta.ppf(0.05, 22, 78) < 0.22 < beta.ppf(0.95, 22, 78) < x["rate_high"]
    assert x["source"] == "measured" and x["measured_low"] < 0.2 < x["measured_high"] and not x["harmful"]
    y = rates.loc["y"]  # asked for, never measured: the prior
    assert y["source"] == "assumed" and y["rate"] == pytest.approx(0.3) and y["n"] == 0
    assert (y["rate_low"], y["rate_high"]) == (pytest.approx(beta.ppf(0.05, *PRIOR)), pytest.approx(beta.ppf(0.95, *PRIOR)))


def test_a_segment_where_contact_hurts_is_named_harmful_and_its_rate_falls_towards_zero():
    few = learn_save_rates(pd.DataFrame([_row("c1", "loyal", 50, 35, 50, 40)])).iloc[0]
    many = learn_save_rates(pd.DataFrame([_row(f"c{i}", "loyal", 2_000, 1_400, 1_000, 800)
                                          for i in range(5)])).iloc[0]
    assert few["measured_rate"] == pytest.approx((35 - 40) / 10)  # saved −5 of 10 would-be churners
    assert few["rate"] == pytest.approx(6 / 30)  # saved floored at 0: Beta(6, 24)
    assert many["measured_rate"] == pytest.approx(-0.5) and many["harmful"]
    assert many["rate"] < few["rate"] < PRIOR[0] / sum(PRIOR)


def test_campaigns_without_a_control_teach_nothing():
    rates = learn_save_rates(pd.DataFrame([_row("c1", "x", 100, 60, 0, 0)]), segments=["x"]).iloc[0]
    assert rates["source"] == "assumed" and rates["rate"] == pytest.approx(0.3)
