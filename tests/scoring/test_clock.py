"""The seasonal clock: operational days by hand, the identity clock is the calendar, the model as data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnclv.features._prep import day_number
from churnclv.scoring.btyd import bgnbd_p_no_purchase
from churnclv.scoring.clock import Clock, ClockedBGNBD

JANUARY_TWICE = Clock((2.0,) + (1.0,) * 11)  # a January day counts for two
BGNBD = {"r": 0.6, "alpha": 4.0, "a": 0.8, "b": 2.5, "time_unit_days": 7.0}


def test_operational_days_by_hand():
    start, end = day_number("2025-01-30"), day_number("2025-02-02")
    assert JANUARY_TWICE.elapsed(np.array([start]), np.array([end]))[0] == 2 + 1 + 1  # 31 Jan, 1 Feb, 2 Feb
    assert JANUARY_TWICE.horizon("2025-01-30", 3) == 4.0
    assert JANUARY_TWICE.horizon("2024-12-31", 31) == 62.0  # all of January
    # first purchase 30 Jan, last 1 Feb, as of 2 Feb: recency 2 days, T 3 days
    recency, T = JANUARY_TWICE.durations(np.array([2.0]), np.array([3.0]), as_of="2025-02-02")
    assert (recency[0], T[0]) == (3.0, 4.0)
    rfm = pd.DataFrame({"frequency": [1.0], "recency": [2.0], "T": [3.0], "monetary_value": [5.0]})
    assert JANUARY_TWICE.rfm(rfm, as_of="2025-02-02")[["recency", "T"]].to_numpy().tolist() == [[3.0, 4.0]]


def test_the_identity_clock_is_the_calendar():
    flat = ClockedBGNBD(Clock((1.0,) * 12), BGNBD)
    table = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 40.0, 200.0], "T": [30.0, 90.0, 260.0]})
    calendar = bgnbd_p_no_purchase(90 / 7, table["frequency"], table["recency"] / 7, table["T"] / 7,
                                   **{k: BGNBD[k] for k in ("r", "alpha", "a", "b")})
    np.testing.assert_allclose(flat.p_no_purchase(table, as_of="2025-06-30", horizon_days=90), calendar, rtol=1e-12)
    # a busy month ahead: the horizon is longer on the clock, so no purchase is less likely for every customer
    busy = ClockedBGNBD(Clock((1.0,) * 6 + (3.0,) + (1.0,) * 5), BGNBD)
    assert (busy.p_no_purchase(table, as_of="2025-06-30", horizon_days=90) < calendar).all()


def test_a_clocked_model_is_data():
    model = ClockedBGNBD(JANUARY_TWICE, BGNBD)
    back = ClockedBGNBD.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back == model and ClockedBGNBD.from_dict(None) is None


@pytest.mark.parametrize("rate", [(1.0,) * 11, (1.0,) * 11 + (0.0,), (1.0,) * 11 + (float("nan"),)])
def test_a_clock_has_twelve_positive_rates(rate):
    with pytest.raises(ValueError, match="12 positive monthly rates"):
        Clock(rate)
