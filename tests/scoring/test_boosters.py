"""The LightGBM scorers as data: calibrated churn probabilities, contributions, drivers; the ranking of
expected purchases into churn probabilities; the snapshot without a CLV fit."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churnclv.contract.columns import PREDICTION_COLUMNS
from churnclv.scoring.boosters import ONE_THREAD_ROWS, ChurnScorer, PurchaseScorer, top_drivers
from churnclv.scoring.bundle import MIN_EXPECTED, ranked_probability
from churnclv.scoring.snapshot import Columns, with_clv

FEATURES = ("recency", "frequency", "noise")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    table = pd.DataFrame({"recency": rng.uniform(0, 365, n), "frequency": rng.poisson(3, n).astype(float),
                          "noise": rng.normal(size=n)})
    return table.assign(churned=(table["recency"] / 365 - table["frequency"] / 10 + rng.normal(0, 0.2, n) > 0.2)
                        .astype(int), purchases=rng.poisson(np.exp(1 - table["recency"] / 200)))


def _booster(frame: pd.DataFrame, label: str, objective: str) -> lgb.Booster:
    params = {"objective": objective, "num_leaves": 4, "verbose": -1, "seed": 7, "deterministic": True,
              "num_threads": 1}
    return lgb.train(params, lgb.Dataset(frame[list(FEATURES)], frame[label]), num_boost_round=20)


def test_churn_probability_is_the_calibrated_sigmoid_of_the_raw_score(frame):
    booster = _booster(frame, "churned", "binary")
    raw = booster.predict(frame[list(FEATURES)], raw_score=True)
    plain = ChurnScorer(booster=booster, features=FEATURES)
    np.testing.assert_allclose(plain.predict_proba(frame), booster.predict(frame[list(FEATURES)]))
    calibrated = ChurnScorer(booster=booster, features=FEATURES, calibration=(0.5, -1.0))
    np.testing.assert_allclose(calibrated.predict_proba(frame), 1 / (1 + np.exp(-(0.5 * raw - 1.0))))
    shuffled = frame[["noise", "frequency", "recency"]]  # columns are picked by name, not position
    np.testing.assert_allclose(calibrated.predict_proba(shuffled), calibrated.predict_proba(frame))


def test_contributions_add_up_to_the_raw_score_less_the_bias(frame):
    booster = _booster(frame, "churned", "binary")
    scorer = ChurnScorer(booster=booster, features=FEATURES)
    contributions = scorer.contributions(frame)
    assert list(contributions.columns) == list(FEATURES) and contributions.index.equals(frame.index)
    bias = booster.predict(frame[list(FEATURES)], pred_contrib=True)[:, -1]
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, booster.predict(frame[list(FEATURES)], raw_score=True))
    assert scorer.importance().index[0] == "recency" and set(scorer.importance().index) == set(FEATURES)


def test_the_purchase_scorer_predicts_counts(frame):
    scorer = PurchaseScorer(booster=_booster(frame, "purchases", "poisson"), features=FEATURES)
    predicted = scorer.predict(frame)
    assert (predicted > 0).all() and predicted.mean() == pytest.approx(frame["purchases"].mean(), rel=0.1)


def test_drivers_are_the_largest_contributions_with_their_values():
    contributions = pd.DataFrame({"recency": [0.5, -0.2], "frequency": [0.1, 0.3], "noise": [-0.4, 0.00004]},
                                 index=["a", "b"])
    values = pd.DataFrame({"recency": [100.0, 5.0], "frequency": [1.0, 9.0], "noise": [0.0, 1.0], "other": 7.0},
                          index=["a", "b"])
    drivers = top_drivers(contributions, values, k=2)
    assert drivers.name == "drivers" and drivers.index.tolist() == ["a", "b"]
    assert drivers["a"] == [{"feature": "recency", "value": 100.0, "contribution": 0.5},
                            {"feature": "frequency", "value": 1.0, "contribution": 0.1}]
    assert drivers["b"] == [{"feature": "frequency", "value": 9.0, "contribution": 0.3},
                            {"feature": "noise", "value": 1.0, "contribution": 0.0}]


def test_ranked_probability_falls_with_expected_purchases():
    expected = np.array([0.0, 0.1, 1.0, 5.0])
    np.testing.assert_allclose(ranked_probability(expected, None), np.exp(-expected))
    calibrated = ranked_probability(expected, (-1.2, 0.3))
    assert (np.diff(calibrated) < 0).all() and ((calibrated > 0) & (calibrated < 1)).all()
    assert calibrated[0] == pytest.approx(1 / (1 + np.exp(-(-1.2 * np.log(MIN_EXPECTED) + 0.3))))


def test_a_snapshot_without_a_clv_fit_has_missing_bgnbd_columns():
    table = pd.DataFrame({"frequency": [1, 2]}, index=pd.Index(["a", "b"], name="customer_id"))
    out = with_clv(table, clv=None, horizon_days=90)
    assert list(out.columns) == ["frequency", *(f"bgnbd_{c}" for c in PREDICTION_COLUMNS)]
    assert out.filter(like="bgnbd_").isna().all().all() and out["frequency"].tolist() == [1, 2]


def test_a_few_rows_on_one_thread_score_as_in_a_table(frame):
    """Up to ONE_THREAD_ROWS rows LightGBM predicts on one thread, a table on OpenMP's default: the same numbers."""
    scorer = ChurnScorer(booster=_booster(frame, "churned", "binary"), features=FEATURES, calibration=(0.8, -0.1))
    assert len(frame) > ONE_THREAD_ROWS
    whole = scorer.predict_proba(frame)
    alone = np.concatenate([scorer.predict_proba(frame.iloc[[i]]) for i in range(len(frame))])
    assert np.array_equal(whole, alone)


def test_columns_give_the_boosters_the_frame_s_numbers(frame):
    """A snapshot read as arrays (the CLV outputs beside the features, not joined) scores and explains like the
    joined frame, to the last digit; a non-numeric column falls back to the frame."""
    features = frame[["recency", "noise"]].assign(cohort="2024-01")
    columns = Columns(features, {"frequency": frame["frequency"].to_numpy()})
    joined = columns.frame()
    assert list(joined.columns) == ["recency", "noise", "cohort", "frequency"]
    matrix = columns[list(FEATURES)]
    assert isinstance(matrix, np.ndarray) and np.array_equal(matrix, joined[list(FEATURES)].to_numpy(dtype=float))
    scorer = ChurnScorer(booster=_booster(frame, "churned", "binary"), features=FEATURES, calibration=(0.8, -0.1))
    assert np.array_equal(scorer.predict_proba(columns), scorer.predict_proba(joined))
    assert np.array_equal(scorer.contributions(columns).to_numpy(), scorer.contributions(joined).to_numpy())
    assert top_drivers(scorer.contributions(columns), columns).tolist() == \
        top_drivers(scorer.contributions(joined), joined).tolist()
    assert isinstance(columns[["recency", "cohort"]], pd.DataFrame)
