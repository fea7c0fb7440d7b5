"""Training end to end on the seed data: no look-ahead, reproducible, the bundle is what was measured."""

import numpy as np
import pandas as pd
import pytest

from churnclv.training.pipeline import fingerprint, train
from tests.conftest import SEED_AS_OF, fast_config


@pytest.fixture(scope="module")
def seed_result(seed_transactions):
    return train(seed_transactions, as_of=SEED_AS_OF, config=fast_config())


def future_noise(transactions: pd.DataFrame, after: pd.Timestamp) -> pd.DataFrame:
    """Plausible transactions strictly after ``after``: if any were read, the scores would move."""
    rng = np.random.default_rng(3)
    ids = transactions["customer_id"].drop_duplicates().sample(500, random_state=3).to_numpy()
    extra = pd.DataFrame({
        "customer_id": np.concatenate([ids, ["NEW-1", "NEW-2"]]),
        "timestamp": after + pd.to_timedelta(rng.integers(1, 60, len(ids) + 2), unit="D") + pd.Timedelta(hours=1),
        "amount": rng.gamma(2.0, 20.0, len(ids) + 2),
    })
    return pd.concat([transactions, extra], ignore_index=True)


def test_no_look_ahead_transactions_after_as_of_change_nothing(seed_transactions, seed_result):
    as_of = SEED_AS_OF - pd.Timedelta(days=120)
    base = train(seed_transactions.loc[seed_transactions["timestamp"] < as_of + pd.Timedelta(days=1)],
                 as_of=as_of, config=fast_config())
    noisy = train(future_noise(seed_transactions, as_of), as_of=as_of, config=fast_config())
    a = base.bundle.score(seed_transactions, as_of=as_of)
    b = noisy.bundle.score(seed_transactions, as_of=as_of)
    pd.testing.assert_frame_equal(a, b)
    assert base.metrics == noisy.metrics
    assert base.bundle.metadata["data"] == noisy.bundle.metadata["data"]


def test_training_is_reproducible(seed_transactions, seed_result):
    again = train(seed_transactions, as_of=SEED_AS_OF, config=fast_config())
    pd.testing.assert_frame_equal(again.bundle.score(seed_transactions, as_of=SEED_AS_OF),
                                  seed_result.bundle.score(seed_transactions, as_of=SEED_AS_OF))


def test_label_windows_of_every_training_cutoff_end_by_as_of(seed_result):
    meta = seed_result.bundle.metadata
    ends = pd.to_datetime(meta["cutoffs"]) + pd.Timedelta(days=meta["horizon_days"])
    assert (ends <= pd.Timestamp(meta["as_of"])).all()
    backtest_ends = pd.to_datetime([f"{c:%Y-%m-%d}" for c in seed_result.backtest_fit.cutoffs]) + pd.Timedelta(days=90)
    assert (backtest_ends <= pd.Timestamp(meta["backtest_origin"])).all()


def test_the_backtest_is_judged_on_what_followed_the_origin(seed_transactions, seed_result):
    origin = pd.Timestamp(seed_result.bundle.metadata["backtest_origin"])
    assert origin == SEED_AS_OF - pd.Timedelta(days=364)  # two years of history: the same season a year earlier
    assert seed_result.bundle.metadata["judging_window"].startswith(
        "judged on 2025-01-01 + 90 days (the same season a year earlier")
    day = seed_transactions["timestamp"].dt.normalize()
    window = seed_transactions.loc[(day > origin) & (day <= origin + pd.Timedelta(days=90))
                                   & (seed_transactions["amount"] >= 0)]
    bought = window.assign(day=window["timestamp"].dt.normalize()).groupby("customer_id")["day"].nunique()
    actual = seed_result.backtest["actual_purchases"]
    assert actual.sum() == bought.reindex(actual.index).fillna(0).sum()


def test_seed_model_beats_its_baselines_and_is_calibrated(seed_result):
    m = seed_result.metrics
    assert m["model"]["roc_auc"] >= m["bgnbd"]["roc_auc"]
    assert m["model"]["roc_auc"] >= m["rfm_logistic"]["roc_auc"] - 0.005
    assert m["model"]["calibration_error"] < 0.05
    assert abs(m["model"]["purchases_total_error_pct"]) < 15


def test_score_table_has_the_contract_columns(seed_transactions, seed_result):
    table = seed_result.bundle.score(seed_transactions, as_of=SEED_AS_OF, explain=True)
    assert list(table.columns[:9]) == ["customer_id", "churn_probability", "p_alive", "expected_purchases",
                                       "expected_spend", "clv", "value_at_risk", "segment", "recommended_action"]
    assert table["customer_id"].is_unique and len(table) == seed_transactions["customer_id"].nunique()
    np.testing.assert_allclose(table["value_at_risk"], table["churn_probability"] * table["clv"])
    assert table["churn_probability"].between(0, 1).all() and table["p_alive"].between(0, 1).all()
    assert len(table["drivers"].iloc[0]) == 3  # the churn classifier explains, whichever ranking ships


def test_fingerprint_ignores_row_order_but_not_content(seed_transactions):
    shuffled = seed_transactions.sample(frac=1.0, random_state=1)
    assert fingerprint(shuffled) == fingerprint(seed_transactions)
    changed = seed_transactions.assign(amount=seed_transactions["amount"].where(lambda a: a.index != 5, 1e6))
    assert fingerprint(changed)["hash"] != fingerprint(seed_transactions)["hash"]


def test_a_history_without_purchases_by_as_of_scores_to_an_empty_table(seed_transactions, seed_result):
    later = seed_transactions.loc[seed_transactions["customer_id"] == "C00001"]
    table = seed_result.bundle.score(later, as_of=later["timestamp"].min() - pd.Timedelta(days=1))
    assert table.empty and list(table.columns[:9]) == list(seed_result.bundle.score(later, as_of=SEED_AS_OF).columns[:9])


def test_each_fit_predicts_its_as_of_table_once_and_every_use_reads_those_outputs(seed_transactions, seed_result):
    """At a million customers a LightGBM prediction takes seconds: the backtest and the policy reuse the
    outputs computed at fit time, and they are the models' own."""
    from churnclv.scoring.bundle import Predicted

    fit = seed_result.backtest_fit
    np.testing.assert_array_equal(fit.predicted.churn, fit.models.churn.predict_proba(fit.table))
    np.testing.assert_array_equal(fit.predicted.purchases, fit.models.purchases.predict(fit.table))
    bundle = seed_result.bundle
    final = bundle.snapshot(seed_transactions, as_of=SEED_AS_OF)
    fresh = bundle.values(final)
    given = Predicted(churn=bundle.models.churn.predict_proba(final), purchases=bundle.models.purchases.predict(final))
    pd.testing.assert_frame_equal(bundle.values(final, predicted=given), fresh)
    zeros = Predicted(churn=np.zeros(len(final)), purchases=np.zeros(len(final)))
    used = bundle.values(final, predicted=zeros)  # what is given is used, not computed again
    assert (used["churn_probability"] == 0).all() == (bundle.churn_method == "lightgbm")
    assert (used["expected_purchases"] == 0).all() == (bundle.purchases_method == "lightgbm_poisson")
