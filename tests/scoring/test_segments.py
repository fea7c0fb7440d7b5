"""The segment policy on a hand-made score table."""

import numpy as np
import pandas as pd
import pytest

from churnclv.scoring.segments import ACTIONS, Policy, action_values, recommended_action

SCORES = pd.DataFrame(
    {
        "T": [10, 400, 400, 400, 400, 400],
        "p_alive": [0.9, 0.01, 0.5, 0.5, 0.9, 0.6],
        "churn_probability": [0.9, 0.99, 0.8, 0.95, 0.1, 0.4],
        "clv": [500.0, 500.0, 1000.0, 10.0, 800.0, 50.0],
    },
    index=["new", "gone", "vip", "risky", "fan", "plain"],
).assign(value_at_risk=lambda d: d["churn_probability"] * d["clv"])


def test_fit_fixes_the_bars_from_quantiles():
    policy = Policy(value_at_risk_quantile=0.8, high_value_quantile=0.5, at_risk_quantile=0.5, loyal_quantile=0.2).fit(SCORES)
    assert policy.high_value == pytest.approx(SCORES["clv"].median())
    assert policy.at_risk == pytest.approx(SCORES["churn_probability"].median())
    assert policy.loyal == pytest.approx(SCORES["churn_probability"].quantile(0.2))


def test_segments_follow_the_rules_in_order():
    policy = Policy(new_customer_days=60, lapsed_p_alive=0.05, value_at_risk=700.0, high_value=500.0,
                    at_risk=0.85, loyal=0.3)
    segments = policy.segment(SCORES)
    assert segments.to_dict() == {"new": "new", "gone": "lapsed", "vip": "high_value_at_risk", "risky": "at_risk",
                                  "fan": "loyal", "plain": "steady"}
    assert recommended_action(segments)["vip"] == "personal_outreach"
    assert set(ACTIONS) == set(segments)


def test_at_risk_is_never_below_the_floor():
    calm = SCORES.assign(churn_probability=0.1, value_at_risk=lambda d: 0.1 * d["clv"])
    assert Policy().fit(calm).at_risk == 0.5


def test_unfitted_policy_refuses_to_segment():
    with pytest.raises(ValueError, match="fit"):
        Policy().segment(SCORES)


def test_segments_and_actions_on_arrays_are_those_of_the_frame():
    policy = Policy(new_customer_days=60, lapsed_p_alive=0.05, value_at_risk=700.0, high_value=500.0,
                    at_risk=0.85, loyal=0.3)
    arrays = policy.segment_values(**{c: SCORES[c].to_numpy() for c in SCORES.columns})
    assert arrays.tolist() == ["new", "lapsed", "high_value_at_risk", "at_risk", "loyal", "steady"]
    assert action_values(arrays).tolist() == ["onboarding", "no_contact", "personal_outreach", "automated_winback",
                                              "no_contact", "newsletter"]
    assert recommended_action(policy.segment(SCORES)).tolist() == action_values(arrays).tolist()


def test_an_unknown_segment_has_no_action():
    with pytest.raises(ValueError, match=r"1 unknown segment\(s\), e.g. \['vip'\]"):
        action_values(np.array(["new", "vip"]))
