"""Every shape of log in the zoo trains and scores; where the future is generated, the forecast holds on it.

Each shape is trained at its as-of dates on the history only and judged on the generated next 90 days
(``seeds.zoo``): all scores finite, what could not be identified named in the notes, the total purchases within
15% of what happened (the seasonal shape in both a peak and a quiet quarter ahead) and inside train's stated
80% interval. Where the
touchpoints carry the signal (the subscription shape), the model trained with them ranks churn well above BG/NBD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.dates import until
from churnclv.features import make_labels
from churnclv.seeds import zoo
from churnclv.training.backtest import roc_auc
from churnclv.training.churn import BoostSettings, CutoffPlan
from churnclv.training.eligibility import EligibilityError
from churnclv.training.pipeline import TrainConfig, train
from churnclv.training.realfuture import judge

SCORES = ("churn_probability", "p_alive", "expected_purchases", "expected_spend", "clv", "value_at_risk")
QUICK = TrainConfig(plan=CutoffPlan(n_cutoffs=6, step_days=21), boost=BoostSettings(n_estimators=300))
CASES = [(name, i) for name, make in zoo.SHAPES.items() for i in range(len(make().as_ofs))]


@pytest.fixture(scope="module")
def shapes() -> dict[str, zoo.Shape]:
    return {name: make() for name, make in zoo.SHAPES.items()}


@pytest.fixture(scope="module")
def trained(shapes):
    """``trained(name, which)``: the shape trained at its ``which``-th as-of date on the history only, and
    its scores; each fitted once for every test of this module."""
    done = {}

    def fit(name: str, which: int = 0):
        if (name, which) not in done:
            shape = shapes[name]
            as_of = shape.as_ofs[which]
            seen = until(shape.transactions, as_of)
            result = train(seen, as_of=as_of, config=QUICK)
            done[name, which] = result, result.bundle.score(seen, as_of=as_of).set_index("customer_id")
        return done[name, which]

    return fit


@pytest.mark.slow
@pytest.mark.parametrize(("name", "which"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_every_shape_trains_scores_and_forecasts_the_real_future(shapes, trained, name, which):
    shape = shapes[name]
    as_of = shape.as_ofs[which]
    result, scores = trained(name, which)
    assert np.isfinite(scores[list(SCORES)].to_numpy()).all()
    assert scores["churn_probability"].between(0, 1).all() and (scores["expected_purchases"] >= 0).all()
    labels = make_labels(shape.transactions, as_of=as_of, horizon_days=QUICK.horizon_days).reindex(scores.index)
    realised = labels["purchases"].sum()
    error = scores["expected_purchases"].sum() / realised - 1
    assert abs(error) <= 0.15, f"{name} at {as_of:%Y-%m-%d}: total purchases {error:+.1%}"
    # the realised total inside train's stated 80% interval, at most ±20% wide where the season was seen
    population = result.bundle.metadata["population"]
    low, high = population["purchases_low"], population["purchases_high"]
    assert low <= realised <= high, f"{name} at {as_of:%Y-%m-%d}: {realised:,} outside {low:,.0f}–{high:,.0f}"
    if result.bundle.models.season_seen:
        assert (high - low) / 2 / population["purchases"] <= 0.20
    else:
        assert "never observed" in population["note"]
    # never a worse churn ranking than BG/NBD's own simple ones (P(no purchase), fewest expected purchases)
    table = result.bundle.snapshot(until(shape.transactions, as_of), as_of=as_of).reindex(scores.index)
    y = labels["churned"].to_numpy(dtype=float)
    simple = max(roc_auc(y, table["bgnbd_p_no_purchase"]), roc_auc(y, -table["bgnbd_expected_purchases"]))
    ours = roc_auc(y, scores["churn_probability"])
    assert ours >= simple - 0.005, f"{name} at {as_of:%Y-%m-%d}: churn AUC {ours:.4f}, BG/NBD's best {simple:.4f}"


@pytest.mark.slow
def test_where_touchpoints_announce_the_lapse_the_model_with_them_ranks_churn_above_bgnbd(shapes):
    """The subscription box: orders on a steady rhythm to the last one, which e-mails left unopened, complaints
    and detractor answers announce weeks before. Trained with the events up to the as-of day (the future ones
    are cut by the training), churnclv's churn AUC on the generated next 90 days is at least 0.02 above the
    best simple BG/NBD ranking (measured: 0.998 against 0.957; seeds 1 and 2: 0.998 / 0.960, 0.997 / 0.965)."""
    shape = shapes["subscription"]
    as_of = shape.as_ofs[0]
    assert shape.events["timestamp"].max() > as_of + pd.Timedelta(days=80)  # the future is there, and not read
    judged = judge(shape.transactions, as_of=as_of, horizon_days=shape.horizon_days, config=QUICK,
                   events=shape.events)
    best, simple = judged.best_simple
    ours = judged.metrics["churnclv"]["roc_auc"]
    assert judged.churn_method == "lightgbm" and ours >= simple + 0.02, (ours, best, simple)


@pytest.mark.slow
def test_where_purchases_come_in_bursts_the_total_is_the_poisson_model_s_own():
    """Bursts of purchases within a week, beyond BG/NBD's assumptions (drawn with seed 1, as of 2024-12-30): on the
    judging window the LightGBM Poisson model's own total was closer than BG/NBD's with its factor (-1.7% against
    +14.7%), so it ships (the note says so), as the sum of that model's forecasts, in the scores and the population's
    forecast alike; on the generated future it is closer too (1,949 and 1,889 for 1,955 that happened)."""
    shape, as_of = zoo.make_bursts(seed=1), pd.Timestamp("2024-12-30")
    seen = until(shape.transactions, as_of)
    bundle = train(seen, as_of=as_of, config=QUICK).bundle
    assert bundle.metadata["purchases_level"] == "lightgbm"
    assert any(n.startswith("total level: the LightGBM Poisson model's own") for n in bundle.metadata["notes"])
    scores = bundle.score(seen, as_of=as_of).set_index("customer_id")
    table = bundle.snapshot(seen, as_of=as_of).reindex(scores.index)
    own = bundle.models.purchases.predict(table).sum()
    assert scores["expected_purchases"].sum() == pytest.approx(own, rel=1e-9)
    assert bundle.metadata["population"]["purchases"] == pytest.approx(own, rel=0.01)  # its mean over the draws
    realised = make_labels(shape.transactions, as_of=as_of, horizon_days=shape.horizon_days)["purchases"].sum()
    bgnbd = (table["bgnbd_expected_purchases"] * bundle.models.season_factor).sum()
    assert abs(own - realised) < abs(bgnbd - realised), (own, bgnbd, realised)


def test_no_dropout_is_named_as_the_nbd_limit(trained):
    result, scores = trained("no_dropout")
    assert result.bundle.models.clv.fit_report_["bgnbd"]["method"] == "nbd_limit"
    assert any("no dropout" in note for note in result.bundle.metadata["notes"])
    assert (scores["p_alive"] == 1.0).all()


def test_a_young_log_serves_the_btyd_model_that_was_measured_and_says_so(shapes, trained):
    """213 days of history: the backtest (at as_of - 90) has too little for stacked snapshots, so only the
    BG/NBD churn score was measured, and that is what is served."""
    shape = shapes["young"]
    result, scores = trained("young")
    assert result.backtest_fit.models.churn is None and result.bundle.metadata["churn_method"] == "bgnbd"
    assert any("BG/NBD alone" in note for note in result.bundle.metadata["notes"])
    np.testing.assert_allclose(scores["churn_probability"],
                               result.bundle.snapshot(until(shape.transactions, shape.as_ofs[0]),
                                                      as_of=shape.as_ofs[0])["bgnbd_p_no_purchase"])


def test_the_season_ahead_is_taken_from_the_same_window_a_year_earlier(shapes, trained):
    """Q4 ahead (30 Sep): the factor lifts the stationary BG/NBD forecast; the quiet quarter (31 Dec) lowers it."""
    shape = shapes["seasonal_q4"]
    peak, quiet = (trained("seasonal_q4", which)[0].bundle.models for which in range(len(shape.as_ofs)))
    assert peak.season_factor > 1.5 and quiet.season_factor < 0.7


# --------------------------------------------------------------------------------------------------
# Logs that truly cannot be modelled: each gate named before anything is fitted
# --------------------------------------------------------------------------------------------------


def _log(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"]))


def _fails(transactions: pd.DataFrame, as_of: str, gate: str) -> str:
    with pytest.raises(EligibilityError) as err:
        train(transactions, as_of=pd.Timestamp(as_of), config=QUICK)
    message = str(err.value)
    assert f"  - {gate}:" in message and "nothing was fitted" in message
    return message


def test_gate_customers():
    rows = [(f"c{i}", f"2024-0{1 + i % 3}-0{1 + i}", 10.0) for i in range(5)] * 2
    _fails(_log(rows), "2024-12-31", "customers")


def test_gate_repeat_buyers():
    rows = [(f"c{i}", f"2024-{1 + i % 12:02d}-15", 10.0) for i in range(200)]
    message = _fails(_log(rows), "2024-12-31", "repeat buyers")
    assert "repeat buyers: 0, needs >= 2" in message


def test_gate_days_of_history():
    rows = [(f"c{i}", d, 10.0) for i in range(50) for d in ("2024-11-01", f"2024-11-{2 + i % 20:02d}")]
    message = _fails(_log(rows), "2024-12-31", "days of history")
    assert "days of history: 60, needs >= 118" in message


def test_gate_at_the_backtest_origin():
    """Plenty of customers now, but all of them arrived in the last 120 days: the backtest model at
    as_of - 90 has customers and no repeat buyer."""
    early = [(f"e{i}", "2024-09-02", 10.0) for i in range(20)]
    late = [(f"c{i}", d, 10.0) for i in range(100) for d in ("2024-10-10", "2024-12-01")]
    _fails(_log(early + late), "2024-12-31", "repeat buyers at the backtest origin")
