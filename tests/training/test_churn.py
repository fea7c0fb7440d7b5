"""Stacked past cutoffs: label windows never pass the as-of date; validation never overlaps training."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churnclv.scoring.boosters import top_drivers
from churnclv.training.churn import (
    WEIGHT,
    BoostSettings,
    CutoffPlan,
    TrainingError,
    cutoff_plan,
    feature_columns,
    fit_churn,
    fit_purchases,
    sample_customers,
    time_split,
)

DAY = pd.Timedelta(days=1)


def test_cutoffs_are_past_and_their_label_windows_end_by_as_of():
    as_of = pd.Timestamp("2025-12-31")
    cutoffs = cutoff_plan(as_of=as_of, first_day=pd.Timestamp("2024-01-01"), horizon_days=90,
                           plan=CutoffPlan(n_cutoffs=5, step_days=14))[0]
    assert cutoffs == sorted(cutoffs) and len(cutoffs) == 5
    assert max(cutoffs) + 90 * DAY == as_of
    assert np.diff(cutoffs).tolist() == [14 * DAY] * 4


def test_a_short_log_uses_as_many_cutoffs_as_fit():
    # nine months of history, 90-day horizon, 56 days of history per snapshot: 270 - 90 - 56 = 124 days -> 9 cutoffs
    cutoffs = cutoff_plan(as_of=pd.Timestamp("2025-09-28"), first_day=pd.Timestamp("2025-01-01"), horizon_days=90,
                           plan=CutoffPlan(n_cutoffs=20, step_days=14, min_history_days=56))[0]
    assert len(cutoffs) == 124 // 14 + 1
    assert min(cutoffs) - pd.Timestamp("2025-01-01") >= 56 * DAY


def test_too_little_history_says_how_much_is_needed():
    with pytest.raises(TrainingError, match=r"100 days from 2025-01-01.*needs 146 days"):
        cutoff_plan(as_of=pd.Timestamp("2025-04-11"), first_day=pd.Timestamp("2025-01-01"), horizon_days=90,
                     plan=CutoffPlan(min_history_days=56))[0]


def test_time_split_keeps_training_label_windows_before_the_validation_cutoff():
    cutoffs = pd.date_range("2025-01-01", periods=10, freq="14D")
    stacked = pd.DataFrame({"cutoff": np.repeat(cutoffs, 3), "x": range(30)})
    train, valid = time_split(stacked, horizon_days=30)
    assert (valid["cutoff"] == cutoffs[-1]).all()
    assert (train["cutoff"] + 30 * DAY <= cutoffs[-1]).all()
    assert train["cutoff"].max() == cutoffs[-4]  # the 2 cutoffs 14 and 28 days before the last are left out


def test_time_split_without_room_for_validation_trains_on_everything():
    stacked = pd.DataFrame({"cutoff": pd.to_datetime(["2025-01-01", "2025-01-15"]), "x": [1, 2]})
    train, valid = time_split(stacked, horizon_days=90)
    assert valid is None and len(train) == 2


def test_feature_columns_leave_out_labels_and_bookkeeping():
    frame = pd.DataFrame({"frequency": [1.0], "cohort": ["2025-01"], "cutoff": [pd.Timestamp("2025-01-01")],
                          "purchases": [1], "spend": [1.0], "churned": [False], "bgnbd_p_alive": [0.5]})
    assert feature_columns(frame) == ["frequency", "bgnbd_p_alive"]


def test_top_drivers_are_the_largest_positive_contributions():
    contrib = pd.DataFrame({"a": [0.5, -1.0], "b": [0.1, 2.0], "c": [0.9, 0.0]}, index=["x", "y"])
    values = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]}, index=["x", "y"])
    drivers = top_drivers(contrib, values, k=2)
    assert [d["feature"] for d in drivers["x"]] == ["c", "a"]
    assert drivers["y"][0] == {"feature": "b", "value": 4.0, "contribution": 2.0}


def test_large_snapshots_are_sampled_stratified_and_weighted_back_to_the_whole():
    snap = pd.DataFrame({"churned": [True] * 3 + [False] * 7, "purchases": range(10)},
                        index=[f"c{i}" for i in range(10)])
    sampled = sample_customers(snap, max_rows=6, seed=1)
    assert len(sampled) == 6 and sampled["churned"].sum() == 3  # the rare outcome kept whole
    np.testing.assert_allclose(sampled.loc[~sampled["churned"], WEIGHT], 7 / 3)
    np.testing.assert_allclose(sampled[WEIGHT].sum(), 10)  # weighted, it stands for every customer
    assert (sampled.groupby("churned")[WEIGHT].sum() == snap.groupby("churned").size()).all()
    pd.testing.assert_frame_equal(sampled, sample_customers(snap, max_rows=6, seed=1))  # deterministic
    assert (sample_customers(snap, max_rows=10, seed=1)[WEIGHT] == 1.0).all()  # small: untouched


def test_a_very_rare_outcome_fills_at_most_half():
    snap = pd.DataFrame({"churned": [False] * 6 + [True] * 94})
    sampled = sample_customers(snap, max_rows=10, seed=0)
    assert (~sampled["churned"]).sum() == 5 and sampled["churned"].sum() == 5
    np.testing.assert_allclose(sampled.groupby("churned")[WEIGHT].sum().to_numpy(), [6, 94])


def _stacked(n_cutoffs: int = 8, per_cutoff: int = 400, seed: int = 0) -> pd.DataFrame:
    """Synthetic snapshots 14 days apart: churn and purchases both depend on ``x``."""
    rng = np.random.default_rng(seed)
    n = n_cutoffs * per_cutoff
    x = rng.normal(size=n)
    purchases = rng.poisson(np.exp(0.5 + 0.8 * x))
    return pd.DataFrame({
        "cutoff": np.repeat(pd.date_range("2025-01-01", periods=n_cutoffs, freq="14D"), per_cutoff),
        "x": x, "noise": rng.normal(size=n), "purchases": purchases, "churned": purchases == 0,
    })


SMALL_BOOST = BoostSettings(n_estimators=200, learning_rate=0.05, num_leaves=4, min_child_samples=20,
                            early_stopping_rounds=10, large_learning_rate=0.2)


@pytest.mark.parametrize("fit", [fit_churn, fit_purchases])
def test_below_the_scale_threshold_the_model_is_refitted_on_every_cutoff(fit):
    stacked = _stacked()
    scorer = fit(stacked, settings=SMALL_BOOST, horizon_days=30)
    assert scorer.booster.best_iteration == 0  # the refit runs a fixed number of rounds, no early stopping
    assert float(scorer.booster.params["learning_rate"]) == 0.05


@pytest.mark.parametrize("fit", [fit_churn, fit_purchases])
def test_at_scale_the_early_stopped_model_is_kept_with_the_larger_learning_rate(fit):
    stacked = _stacked()
    at_scale = replace(SMALL_BOOST, large_rows=len(stacked) - 1)
    scorer = fit(stacked, settings=at_scale, horizon_days=30)
    booster = scorer.booster
    assert 0 < booster.best_iteration < at_scale.n_estimators  # early-stopped on the latest cutoff
    assert float(booster.params["learning_rate"]) == 0.2 and int(booster.params["max_bin"]) == 63
    # it learned from the cutoffs whose label windows end by the validation cutoff only: the outcomes of
    # the cutoffs within one horizon of it change nothing
    latest = stacked["cutoff"].max()
    hidden = (stacked["cutoff"] < latest) & (stacked["cutoff"] + pd.Timedelta(days=30) > latest)
    assert hidden.any()
    shuffled = stacked.copy()
    shuffled.loc[hidden, ["purchases", "churned"]] = shuffled.loc[hidden, ["purchases", "churned"]].to_numpy()[::-1]
    again = fit(shuffled, settings=at_scale, horizon_days=30)
    frame = stacked.iloc[:50]
    np.testing.assert_array_equal(again.booster.predict(frame[list(again.features)]),
                                  booster.predict(frame[list(scorer.features)]))


@pytest.mark.parametrize("fit", [fit_churn, fit_purchases])
def test_earlier_cutoffs_with_a_single_outcome_train_on_every_cutoff(fit):
    """Nobody bought in the label windows of the cutoffs before the validation one (the events shape at a tenth
    of its customers, drawn with seed 4, as of 2024-05-01: LightGBM refused, "[poisson]: sum of labels is
    zero"): nothing to learn there, so the model is fitted on every cutoff with fixed rounds."""
    stacked = _stacked()
    latest = stacked["cutoff"] == stacked["cutoff"].max()
    stacked.loc[~latest, ["purchases", "churned"]] = [0, True]
    scorer = fit(stacked, settings=SMALL_BOOST, horizon_days=30)
    assert scorer.booster.best_iteration == 0 and scorer.booster.current_iteration() == SMALL_BOOST.fixed_rounds
