"""The BTYD closed forms and the CLV parameters as data, on the papers' published numbers.

BG/NBD on CDNOW (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): r = 0.243,
alpha = 4.414, a = 0.793, b = 2.426 (weeks); a customer with x = 2, t_x = 30.43, T = 38.86 is expected
to make 1.226 purchases in the next 39 weeks. Gamma-Gamma on CDNOW (Fader, Hardie & Lee 2005, "RFM and
CLV"): p = 6.25, q = 3.74, v = 15.44; the population mean spend per purchase is p v / (q - 1) = 35.22.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.columns import PREDICTION_COLUMNS
from churnclv.scoring.btyd import (
    QUADRATURE_FROM_A,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_if_alive,
    bgnbd_p_alive,
    bgnbd_p_no_purchase,
    discount_schedule,
    gamma_gamma_expected_spend,
)
from churnclv.scoring.clv import CLVParams

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def test_the_papers_customer_expects_1_226_purchases_in_39_weeks():
    assert bgnbd_expected_purchases(39.0, 2, 30.43, 38.86, **BG) == pytest.approx(1.226, abs=5e-4)


def test_p_alive_is_one_without_repeats_or_without_dropout_and_falls_with_silence():
    assert bgnbd_p_alive(np.array([0, 0]), np.array([0.0, 0.0]), np.array([5.0, 50.0]), **BG).tolist() == [1.0, 1.0]
    assert bgnbd_p_alive(3, 10.0, 50.0, **{**BG, "a": 0.0}) == 1.0
    silence = bgnbd_p_alive(3, np.array([49.0, 30.0, 10.0]), 50.0, **BG)
    assert (np.diff(silence) < 0).all() and ((silence > 0) & (silence < 1)).all()


def test_no_dropout_is_the_nbd_forecast():
    x, T, t = np.array([0.0, 4.0]), np.array([10.0, 20.0]), 13.0
    expected = (BG["r"] + x) * t / (BG["alpha"] + T)
    np.testing.assert_allclose(bgnbd_expected_purchases_if_alive(t, x, T, **{**BG, "a": 0.0}), expected)


def test_a_equal_one_is_the_limit_from_either_side():
    near = [bgnbd_expected_purchases_if_alive(39.0, 2.0, 38.86, **{**BG, "a": a}) for a in (1 - 1e-6, 1.0, 1 + 1e-6)]
    assert np.isfinite(near).all() and max(near) - min(near) < 1e-4


def test_a_dropout_probability_nearly_the_same_for_everyone_still_forecasts():
    """a and b in the thousands (a fit on one_time drawn with seed 1: a = 7504, b = 88,647) made scipy's 2F1
    NaN, and every forecast with it. Then p is nearly a constant mu = a / (a + b), and given the rate the
    expected purchases are (1 - exp(-lambda mu t)) / mu, so E[Y(t) | alive] is by hand
    g(mu) = (1 - ((alpha+T)/(alpha+T+mu t))^(r+x)) / mu, plus g''(mu) Var(p) / 2 for p's small spread, mu and Var
    those of Beta(a, b+x); the closed form and the quadrature agree where both hold."""
    x, T, t = np.array([0.0, 1.0, 2.0, 5.0, 14.0]), np.array([52.0, 40.0, 30.0, 20.0, 52.0]), 13.0
    r, alpha = 0.0376, 0.467
    g = lambda p: -np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p  # noqa: E731
    for a, b in ((7503.68, 88647.3), (2e4, 2e4)):
        mu, n = a / (a + b + x), a + b + x
        curvature = (g(mu + 1e-4) - 2 * g(mu) + g(mu - 1e-4)) / 1e-8
        by_hand = g(mu) + curvature * mu * (1 - mu) / (n + 1) / 2
        got = bgnbd_expected_purchases_if_alive(t, x, T, r=r, alpha=alpha, a=a, b=b)
        np.testing.assert_allclose(got, by_hand, rtol=1e-5)
    months = bgnbd_expected_purchases_if_alive(np.array([[4.0], [13.0]]), x[None, :], T[None, :], r=r, alpha=alpha,
                                               a=7503.68, b=88647.3)  # the discounting's months by pairs
    assert months.shape == (2, 5) and (months[0] < months[1]).all()
    sides = [bgnbd_expected_purchases_if_alive(t, x, T, **{**BG, "a": a, "b": 40.0})
             for a in (QUADRATURE_FROM_A * (1 - 1e-9), QUADRATURE_FROM_A)]  # the closed form, the quadrature
    np.testing.assert_allclose(sides[0], sides[1], rtol=1e-5)


def test_expected_purchases_are_finite_and_below_the_no_dropout_forecast_for_any_parameters():
    """Property over 500 parameter sets (a, b from 0.01 to 100,000): dropping out only takes purchases away, so
    0 <= E[Y(t) | alive] <= (r+x) t / (alpha+T), the NBD's; and never NaN."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        a, b, r, alpha = 10 ** rng.uniform([-2, -2, -2, -1], [5, 5, 1, 2])
        x, T, t = rng.integers(0, 60, 8).astype(float), rng.uniform(1, 150, 8), rng.uniform(1, 60)
        got = bgnbd_expected_purchases_if_alive(t, x, T, r=r, alpha=alpha, a=a, b=b)
        assert np.isfinite(got).all() and (got >= 0).all(), (a, b, r, alpha)
        assert (got <= (r + x) * t / (alpha + T) * (1 + 1e-9)).all(), (a, b, r, alpha)


def test_no_purchase_is_a_probability_that_falls_with_the_horizon():
    p = bgnbd_p_no_purchase(np.array([1.0, 13.0, 52.0, 520.0]), 2, 30.43, 38.86, **BG)
    assert ((p > 0) & (p < 1)).all() and (np.diff(p) < 0).all()
    assert p[-1] > 1 - bgnbd_p_alive(2, 30.43, 38.86, **BG)  # a dead customer never buys again


def test_gamma_gamma_shrinks_the_observed_mean_towards_the_population_mean():
    population = GG["p"] * GG["v"] / (GG["q"] - 1)
    assert population == pytest.approx(35.22, abs=5e-3)
    spend = gamma_gamma_expected_spend(np.array([0, 1, 10, 1000]), np.array([0.0, 100.0, 100.0, 100.0]), **GG)
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < spend[2] < spend[3] < 100.0 and spend[3] == pytest.approx(100.0, rel=1e-2)
    assert gamma_gamma_expected_spend(5, -20.0, **GG) == gamma_gamma_expected_spend(5, 0.0, **GG)  # net returns


@pytest.mark.parametrize("horizon, months, last", [(90, 3, 90.0), (365, 12, 365.0), (10, 1, 10.0)])
def test_discounting_is_monthly_and_ends_at_the_horizon(horizon, months, last):
    ends, factors = discount_schedule(horizon_days=horizon, annual_rate=0.10)
    assert len(ends) == months and ends[-1] == last and (np.diff(ends) > 0).all()
    np.testing.assert_allclose(factors, 1.10 ** (-ends / 365.0))
    assert discount_schedule(horizon_days=365, annual_rate=0.10)[1][-1] == pytest.approx(1 / 1.10)


def _clv(discount_rate: float = 0.10) -> CLVParams:
    return CLVParams.from_dict({"time_unit_days": 7.0, "discount_rate": discount_rate, "clv_horizon_days": 365,
                                "bgnbd": {**BG, "time_unit_days": 7.0}, "gamma_gamma": GG})


RFM = pd.DataFrame({"frequency": [0, 2, 2, 12], "recency": [0.0, 213.01, 60.0, 250.0], "T": [272.02] * 4,
                    "monetary_value": [0.0, 40.0, 40.0, 15.0]}, index=pd.Index(["a", "b", "c", "d"], name="customer_id"))


def test_clv_params_predict_in_days_what_the_closed_forms_give_in_weeks():
    out = _clv().predict(RFM, horizon_days=273)
    assert list(out.columns) == list(PREDICTION_COLUMNS) and out.index.equals(RFM.index)
    x, t_x, T = RFM["frequency"].to_numpy(), RFM["recency"].to_numpy() / 7, RFM["T"].to_numpy() / 7
    np.testing.assert_allclose(out["p_alive"], bgnbd_p_alive(x, t_x, T, **BG))
    np.testing.assert_allclose(out["expected_purchases"], bgnbd_expected_purchases(39.0, x, t_x, T, **BG))
    assert out.loc["b", "expected_purchases"] == pytest.approx(1.226, abs=5e-4)  # the paper's customer, in days
    np.testing.assert_allclose(out["expected_spend"], out["expected_purchases"] * out["expected_spend_per_purchase"])


def test_undiscounted_clv_is_the_expected_spend_over_the_clv_horizon():
    year = _clv(0.0).predict(RFM, horizon_days=365)
    np.testing.assert_allclose(_clv(0.0).predict(RFM, horizon_days=30)["clv"], year["expected_spend"], rtol=1e-9)
    discounted = _clv(0.10).predict(RFM, horizon_days=30)["clv"]
    assert ((discounted < year["expected_spend"]) & (discounted > year["expected_spend"] / 1.10)).all()


def test_clv_params_round_trip_as_plain_data():
    data = _clv().to_dict()
    again = CLVParams.from_dict(data)
    assert again.to_dict() == data
    pd.testing.assert_frame_equal(again.predict(RFM, horizon_days=90), _clv().predict(RFM, horizon_days=90))
    with pytest.raises(ValueError, match="not fitted"):
        CLVParams().predict(RFM, horizon_days=90)
    with pytest.raises(ValueError, match="horizon_days must be a positive"):
        again.predict(RFM, horizon_days=0)
