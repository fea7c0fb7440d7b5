"""Backtest metrics on hand-computed examples."""

import numpy as np
import pandas as pd
import pytest

from churnclv.training.backtest import (
    auc_difference,
    calibration_error,
    churn_metrics,
    forecast_metrics,
    purchase_metrics,
    roc_auc,
    top_decile_lift,
)
from churnclv.training.plots import lift_gain_chart


def test_calibration_error_by_hand():
    # two bins of two: predicted means 0.15 and 0.75, observed 0.0 and 1.0 -> (0.15*2 + 0.25*2) / 4
    y = np.array([0, 0, 1, 1.0])
    p = np.array([0.1, 0.2, 0.7, 0.8])
    assert calibration_error(y, p, n_bins=2) == pytest.approx(0.2)


def test_top_decile_lift_by_hand():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0.0])  # base rate 0.1
    score = np.arange(20.0)[::-1]  # highest scores first: rows 0 and 1 are the top decile
    assert top_decile_lift(y, score) == pytest.approx(0.5 / 0.1)


def test_tied_scores_count_together_whatever_the_order_of_the_ids():
    # 20 customers, one score for all but two: the top decile (2 customers) holds one certain churner and a
    # share of the tied group; the lift must not depend on which tied customer comes first.
    y = np.array([1, 0] + [1] * 6 + [0] * 12, dtype=float)  # base rate 7/20
    score = np.array([0.9, 0.1] + [0.5] * 18)
    rng = np.random.default_rng(0)
    lifts = set()
    for _ in range(5):
        order = rng.permutation(20)
        lifts.add(round(top_decile_lift(y[order], score[order]), 12))
    # top 10% = the 0.9 customer (a churner) + 1/18 of the tied group's 18 (6 churners): 1 + 6/18 of 2 slots
    assert lifts == {round(((1 + 6 / 18) / 2) / (7 / 20), 12)}
    chart = lift_gain_chart(y, {"m": score})
    assert chart.axes[1].lines[1].get_ydata()[0] == pytest.approx(top_decile_lift(y, score))


def test_churn_metrics_of_a_window_where_everyone_had_the_same_outcome_are_nan_not_an_error():
    m = churn_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.isnan([m["roc_auc"], m["pr_auc"], m["lift_top_decile"]]).all()
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.09 + 0.16) / 4)


def test_roc_auc_of_a_window_where_everyone_had_the_same_outcome_is_nan_not_an_error():
    assert np.isnan(roc_auc(np.ones(5), np.arange(5.0)))
    assert np.isnan(roc_auc(np.array([0, 1.0]), np.array([np.nan, 1.0])))
    assert roc_auc(np.array([0, 1, 0, 1.0]), np.array([0.1, 0.9, 0.2, 0.3])) == 1.0


def test_churn_metrics_of_a_perfect_score():
    y = np.array([0, 1, 0, 1.0])
    m = churn_metrics(y, y * 0.9 + 0.05)
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["brier"] == pytest.approx(0.05**2)


def test_forecast_metrics_by_hand():
    predicted = pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"])
    actual = pd.Series([2.0, 2.0, 4.0], index=["c", "b", "a"])  # aligned by customer, not by position
    m = forecast_metrics(predicted, actual, name="x")
    assert m["x_total_error_pct"] == pytest.approx(100 * (6 - 8) / 8)
    assert m["x_mae"] == pytest.approx((3 + 0 + 1) / 3)
    # ranks (1, 2, 3) against (3, 1.5, 1.5): r = -1.5 / sqrt(2 * 1.5)
    assert m["x_spearman"] == pytest.approx(-np.sqrt(3) / 2)


def test_poisson_deviance_prefers_the_right_mean_over_zero():
    actual = pd.Series([0, 0, 0, 3.0], index=list("abcd"))
    zero = purchase_metrics(pd.Series(0.0, index=actual.index), actual)
    mean = purchase_metrics(pd.Series(0.75, index=actual.index), actual)
    assert zero["purchases_mae"] < mean["purchases_mae"]  # MAE rewards forecasting nothing ...
    assert mean["purchases_poisson_deviance"] < zero["purchases_poisson_deviance"]  # deviance does not


def test_the_purchase_forecast_must_get_the_total_right_before_deviance_decides():
    from churnclv.training.pipeline import choose_purchases_method

    errors = {
        "bgnbd": {"purchases_total_error_pct": -13.0, "purchases_poisson_deviance": 0.80},
        "bgnbd_scaled": {"purchases_total_error_pct": 4.0, "purchases_poisson_deviance": 0.84},
        "lightgbm_poisson": {"purchases_total_error_pct": -2.0, "purchases_poisson_deviance": 0.82},
    }
    # bgnbd has the best deviance but misses the total by 13%: of the two within 10%, the better deviance
    assert choose_purchases_method(errors, max_total_error_pct=10) == "lightgbm_poisson"
    assert choose_purchases_method(errors, max_total_error_pct=15) == "bgnbd"
    # none within 1%: the smallest total error
    assert choose_purchases_method(errors, max_total_error_pct=1) == "lightgbm_poisson"


def test_auc_difference_and_its_delong_standard_error_by_hand():
    """Two churners, two others. Score a: the churners outrank (1, ½) of the others, each other is outranked by
    (½, 1) of the churners: AUC ¾. Score b ranks perfectly: AUC 1. The paired components differ by (0, −½) and
    (−½, 0): variance ⅛/2 + ⅛/2, standard error √⅛."""
    y = np.array([1, 1, 0, 0])
    a, b = np.array([0.9, 0.4, 0.5, 0.1]), np.array([0.9, 0.6, 0.5, 0.1])
    diff, se = auc_difference(y, a, b)
    assert diff == pytest.approx(roc_auc(y, a) - roc_auc(y, b)) == pytest.approx(-0.25)
    assert se == pytest.approx(np.sqrt(0.125))
    assert auc_difference(y, a, a) == (0.0, 0.0)
    assert all(np.isnan(auc_difference(np.ones(4), a, b)))


def test_the_delong_standard_error_agrees_with_a_bootstrap_over_customers():
    rng = np.random.default_rng(7)
    y = rng.random(2000) < 0.3
    a = y + rng.normal(0, 1.2, 2000)
    b = 0.8 * a + rng.normal(0, 0.6, 2000)
    diff, se = auc_difference(y, a, b)
    draws = [roc_auc(y[k], a[k]) - roc_auc(y[k], b[k]) for k in rng.integers(0, 2000, (300, 2000))]
    assert diff == pytest.approx(roc_auc(y, a) - roc_auc(y, b))
    assert se == pytest.approx(np.std(draws), rel=0.15)
