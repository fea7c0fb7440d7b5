"""Choosing on a window that can judge: the gates, the windows, the rankings, the calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.dates import until
from churnclv.features import build_features
from churnclv.scoring.btyd import QUADRATURE_FROM_A
from churnclv.scoring.bundle import ranked_probability
from churnclv.seeds import zoo
from churnclv.training.choice import (
    MIN_LEVEL_PURCHASES,
    MIN_OUTCOME,
    Window,
    calendar_concentration,
    can_judge,
    choose_level,
    choose_ranking,
    clock_verdict,
    daily_purchases,
    plan_judging,
    rank_calibration,
    told_apart,
)
from churnclv.training.clv import CLVModel
from churnclv.training.pipeline import train
from tests.conftest import fast_config

AS_OF = pd.Timestamp("2025-04-30")
FIRST = pd.Timestamp("2023-01-01")


def labels(churned: int, bought: int) -> pd.DataFrame:
    """A labelled window: ``churned`` customers bought nothing, ``bought`` bought once."""
    purchases = np.r_[np.zeros(churned), np.ones(bought)]
    return pd.DataFrame({"purchases": purchases, "spend": purchases * 10.0, "churned": purchases == 0})


def test_a_window_judges_only_with_purchases_both_outcomes_and_enough_of_the_rarer():
    assert can_judge(labels(500, 0)) == "no purchase in the window"
    assert can_judge(labels(0, 500)) == "every customer had the same outcome"
    assert can_judge(labels(500, MIN_OUTCOME - 1)).startswith(f"only {MIN_OUTCOME - 1} customer(s) bought in")
    assert can_judge(labels(MIN_OUTCOME - 1, 500)).startswith(f"only {MIN_OUTCOME - 1} customer(s) bought nothing")
    assert can_judge(labels(MIN_OUTCOME, MIN_OUTCOME)) == ""
    assert can_judge(labels(0, 0)) == "no purchase in the window"


def test_calendar_concentration_by_hand():
    even = pd.Series(1, index=range(364))  # a purchase every day: 4 weeks of 52 hold 4/52
    assert calendar_concentration(even) == pytest.approx(4 / 52)
    events = pd.Series([100, 100, 1, 1], index=[3, 10, 100, 200])  # two giving weeks and two stray gifts
    assert calendar_concentration(events) == pytest.approx(202 / 202)
    assert calendar_concentration(pd.Series(dtype=float)) == 0.0


def test_daily_purchases_count_the_year_before_as_of_by_day_offset():
    tx = pd.DataFrame({"customer_id": list("abcde"), "amount": [5.0, 5.0, -5.0, 5.0, 5.0],
                       "timestamp": pd.to_datetime(["2025-04-30 18:00", "2025-04-29 00:00", "2025-04-29 00:00", "2024-05-02 00:00",
                                                    "2024-05-01 00:00"])})
    daily = daily_purchases(tx, as_of=AS_OF)
    assert daily.to_dict() == {0: 1, 1: 1, 364 - 1: 1}  # the return and the day 364 days back are not counted


def plan(judgeable: set[pd.Timestamp], *, full: bool = True, first: pd.Timestamp = FIRST):
    return plan_judging(as_of=AS_OF, first_day=first, horizon_days=90,
                        labels=lambda o: labels(100, 100) if o in judgeable else labels(100, 0),
                        full_at=lambda o: full)


def test_the_same_season_a_year_earlier_judges_first():
    year, latest = AS_OF - pd.Timedelta(days=364), AS_OF - pd.Timedelta(days=90)
    chosen = plan({year, latest})
    assert chosen.window.origin == year and chosen.simple is None
    assert chosen.describe(90) == "judged on 2024-05-01 + 90 days (the same season a year earlier)"


def test_a_season_too_young_for_every_candidate_chooses_only_the_simple_rankings():
    year, latest = AS_OF - pd.Timedelta(days=364), AS_OF - pd.Timedelta(days=90)
    chosen = plan({year, latest}, full=False)
    assert chosen.window.origin == latest and chosen.simple.origin == year
    only_season = plan({year}, full=False)  # no recent window can judge: the season judges alone
    assert only_season.window.origin == year and only_season.simple is None


def test_a_window_without_purchases_moves_the_choice_to_the_latest_that_can_judge():
    first = AS_OF - pd.Timedelta(days=300)  # no year earlier
    earlier = AS_OF - pd.Timedelta(days=90 + 28)
    chosen = plan({earlier}, first=first)
    assert chosen.window.origin == earlier and chosen.simple is None
    assert chosen.window.tried == ("2025-01-30: no purchase in the window", "2025-01-16: no purchase in the window")
    assert "the latest earlier window that can judge" in chosen.describe(90)
    nothing = plan(set(), first=first)
    assert nothing.window.origin is None
    assert nothing.describe(90).endswith("nothing is chosen on metrics, BG/NBD ships")


def _window(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Outcomes of a window (1 = churned) and three rankings of them: good (AUC ~0.76), fair (~0.64), bad (~0.5)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    return y, y + rng.normal(0, 1, n), 0.5 * y + rng.normal(0, 1, n), rng.normal(0, 1, n)


def test_the_best_ranking_ships_and_a_tie_goes_to_the_simpler():
    y, good, _, bad = _window()
    assert choose_ranking(y, {"bgnbd": bad, "lightgbm": good})[0] == "lightgbm"
    method, aucs = choose_ranking(y, {"bgnbd": good, "lightgbm": good, "rfm_logistic": good * 2})
    assert method == "bgnbd" and aucs["lightgbm"] == aucs["bgnbd"]
    assert choose_ranking(y, {"bgnbd": bad, "rfm_logistic": good})[0] == "bgnbd"  # measured, never shipped
    assert choose_ranking(np.ones(len(y)), {"lightgbm": good})[0] == "bgnbd"  # nothing can judge: the simplest


def test_a_model_whose_win_is_inside_the_windows_noise_does_not_ship():
    """LightGBM ranks the window better than BG/NBD by one customer's place: no evidence, the simpler ships."""
    y, good, _, _ = _window()
    nudged = good.copy()
    lowest_churned = np.flatnonzero(y == 1)[np.argmin(good[y == 1])]
    nudged[lowest_churned] = good.max() + 1
    scores = {"bgnbd": good, "lightgbm": nudged}
    method, aucs = choose_ranking(y, scores)
    assert aucs["lightgbm"] > aucs["bgnbd"] and method == "bgnbd"
    note = told_apart(y, scores, chosen=method, rivals=["lightgbm"])
    assert "lightgbm ranked it better by less than 1 standard error" in note and note.endswith("the simpler ships")
    both_simple = told_apart(y, {"bgnbd_expected": good, "bgnbd_clock": nudged}, chosen="bgnbd_expected",
                             rivals=["bgnbd_clock"])
    assert "a coin flip" in both_simple and "ships" not in both_simple  # no rule sent it back
    clear = good + np.where(y == 1, 0.3, 0.0)  # a real gain, many standard errors wide
    assert choose_ranking(y, {"bgnbd": good, "lightgbm": clear})[0] == "lightgbm"


def test_fewest_expected_purchases_ships_over_p_none_only_on_evidence():
    """P(no purchase) is the model's own probability of the label; expected purchases stand in for it and ship
    only when they rank the window better by more than one standard error, on the window that chose them."""
    y, good, _, bad = _window()
    nudged = good.copy()
    nudged[np.flatnonzero(y == 1)[np.argmin(good[y == 1])]] = good.max() + 1  # better by one customer's place
    scores = {"bgnbd": good, "bgnbd_expected": nudged}
    method, aucs = choose_ranking(y, scores)
    assert aucs["bgnbd_expected"] > aucs["bgnbd"] and method == "bgnbd"
    assert told_apart(y, scores, chosen=method, rivals=["bgnbd_expected"]).endswith(
        "so bgnbd, the model's own probability of churn, ships")
    clear = good + np.where(y == 1, 0.3, 0.0)
    assert choose_ranking(y, {"bgnbd": good, "bgnbd_expected": clear})[0] == "bgnbd_expected"
    # chosen on the season's window: judged there, not on the judging window (where expected looks far better)
    assert choose_ranking(y, {"bgnbd": bad, "bgnbd_expected": good}, simple=(y, scores))[0] == "bgnbd"
    assert choose_ranking(y, {"bgnbd": bad, "bgnbd_expected": good}, ship=("bgnbd_expected",))[0] == "bgnbd_expected"


def test_the_simple_rankings_are_chosen_on_the_season_and_the_rest_must_beat_that_choice():
    y, good, fair, bad = _window()
    season = (y, {"bgnbd": bad, "bgnbd_expected": good})
    # on the judging window P(none) looks best, but the season a year earlier chose expected purchases
    method, aucs = choose_ranking(y, {"bgnbd": good, "bgnbd_expected": fair, "lightgbm": fair}, simple=season)
    assert method == "bgnbd_expected" and aucs["bgnbd_expected@season"] == aucs["bgnbd"]
    method, _ = choose_ranking(y, {"bgnbd": good, "bgnbd_expected": bad, "lightgbm": fair}, simple=season)
    assert method == "lightgbm"  # LightGBM beats the season's choice where both can be measured


def test_a_simple_ranking_the_season_lacks_competes_on_the_judging_window():
    """A season a year earlier too young for a seasonal clock: BG/NBD on the clock must beat the season's choice
    on the judging window, as the LightGBM candidates must."""
    y = np.array([1, 1, 0, 0, 1, 0.0])
    good, fair, bad = (np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]), np.array([0.9, 0.2, 0.1, 0.8, 0.7, 0.3]),
                       np.array([0.1, 0.9, 0.8, 0.2, 0.3, 0.7]))
    season = (y, {"bgnbd": good, "bgnbd_expected": bad})  # no clock there
    method, aucs = choose_ranking(y, {"bgnbd": fair, "bgnbd_expected": bad, "bgnbd_clock": good}, simple=season)
    assert method == "bgnbd_clock" and "bgnbd_clock@season" not in aucs
    method, _ = choose_ranking(y, {"bgnbd": fair, "bgnbd_expected": bad, "bgnbd_clock": fair}, simple=season)
    assert method == "bgnbd"  # a tie on the judging window: the season's choice, the simpler


def test_the_clocks_trial_ships_it_only_when_strictly_better():
    y = np.array([1, 1, 0, 0, 1, 0.0])
    good, fair = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]), np.array([0.9, 0.2, 0.1, 0.8, 0.7, 0.3])
    wins, said = clock_verdict(y, {"bgnbd_clock": good, "bgnbd": fair}, against="bgnbd", window="W")
    assert wins and said == ("seasonal clock judged on W (the judging fit had no clock): BG/NBD on the clock ranks it "
                             "better than bgnbd (AUC 1.0000 against 0.6667), and ships")
    wins, said = clock_verdict(y, {"bgnbd_clock": fair, "bgnbd_expected": fair}, against="bgnbd_expected", window="W")
    assert not wins and "ranks it no better than bgnbd_expected (AUC 0.6667 against 0.6667)" in said


def test_the_run_says_when_the_judging_window_cannot_tell_two_rankings_apart():
    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.4).astype(float)
    signal = y + rng.normal(0, 1.0, 3000)
    alike, worse = signal + rng.normal(0, 0.05, 3000), rng.normal(0, 1.0, 3000) + 0.3 * y
    scores = {"bgnbd": signal, "bgnbd_expected": alike, "lightgbm": worse}
    note = told_apart(y, scores, chosen="bgnbd", rivals=["bgnbd_expected", "lightgbm"])
    assert "bgnbd and bgnbd_expected rank the judging window alike" in note and "lightgbm" not in note
    assert told_apart(y, scores, chosen="bgnbd", rivals=["lightgbm"]) == ""  # told apart: nothing to say


def test_a_coin_flip_between_the_simple_rankings_is_said_in_the_run():
    """seasonal_q4 as of 2023-09-30, nine months of history: fewest expected purchases ranks the quarter behind
    better than P(no purchase) by 0.0003, far inside that window's precision; P(no purchase) ships (on the real
    future, the holiday quarter, it ranks 0.665 against 0.652) and the run says why."""
    shape = zoo.make_seasonal_q4()
    as_of = pd.Timestamp("2023-09-30")
    meta = train(until(shape.transactions, as_of), as_of=as_of, config=fast_config()).bundle.metadata
    said = [n for n in meta["notes"] if n.startswith("a coin flip:")]
    assert meta["churn_method"] == "bgnbd"
    assert said and "bgnbd and bgnbd_expected rank the judging window alike" in said[0]
    assert said[0].endswith("so bgnbd, the model's own probability of churn, ships")


def test_the_calibration_of_expected_purchases_keeps_their_order_and_fits_the_rates():
    rng = np.random.default_rng(0)
    expected = rng.gamma(1.0, 1.0, 20_000)
    churned = rng.random(20_000) < np.exp(-expected)  # Poisson: P(none) = exp(-E)
    slope, intercept = rank_calibration(churned, expected)
    assert slope < 0
    p = ranked_probability(expected, (slope, intercept))
    assert (np.diff(p[np.argsort(expected)]) <= 1e-12).all()
    assert p.mean() == pytest.approx(churned.mean(), abs=0.005)
    np.testing.assert_allclose(ranked_probability(expected, None), np.exp(-expected))


def test_a_backtest_window_without_purchases_is_a_named_gate_and_the_choice_is_made_elsewhere():
    """The donations shape as of 30 April 2025: the quarter behind holds no giving week (the last was in
    January), so the horizon before as-of cannot judge; the same season a year earlier, with its July event,
    can, and the run chooses there and says so."""
    shape = zoo.make_donations()
    as_of = pd.Timestamp("2025-04-30")
    result = train(until(shape.transactions, as_of), as_of=as_of, config=fast_config())
    meta = result.bundle.metadata
    gates = {g["name"]: g for g in meta["eligibility"]["gates"]}
    empty = gates["customers of the rarer outcome in the horizon before as-of"]
    assert not empty["passed"] and empty["value"] < MIN_OUTCOME
    assert "That window cannot judge a churn ranking: judged on 2024-05-01 + 90 days" in empty["consequence"]
    assert not gates["share of a year's purchases in its busiest 4 weeks"]["passed"]  # concentrated
    assert meta["backtest_origin"] == "2024-05-01"
    assert np.isfinite(result.metrics["model"]["roc_auc"]) and result.metrics["model"]["roc_auc"] > 0.7
    assert any("That window cannot judge" in n for n in meta["notes"])
    # the stacked snapshots come from the same season of the years before: label windows hold the July event
    assert meta["cutoffs"] and all(pd.Timestamp(c).month in (4, 5) for c in meta["cutoffs"])


def test_window_describes_what_was_skipped():
    w = Window(pd.Timestamp("2025-01-01"), "the horizon before the as-of day", ("2025-01-15: no purchase",))
    assert w.describe(90) == "2025-01-01 + 90 days (the horizon before the as-of day; skipped 2025-01-15: no purchase)"


def test_the_total_level_ships_where_the_judging_window_found_it_closer_and_could_judge_it():
    # 1,000 purchases happened; BG/NBD with the season said 1,200 (+20.0%), the Poisson model's own 1,030 (+3.0%)
    level, said = choose_level(actual=1000, bgnbd=1200, lightgbm=1030, season_seen=True)
    assert level == "lightgbm" and said.endswith("(+3.0% against +20.0% for BG/NBD with the season)")
    assert choose_level(actual=1000, bgnbd=1010, lightgbm=1030, season_seen=True) == ("bgnbd", "")  # BG/NBD closer
    assert choose_level(actual=1000, bgnbd=970, lightgbm=1030, season_seen=True) == ("bgnbd", "")  # a tie: BG/NBD
    assert choose_level(actual=1000, bgnbd=1200, lightgbm=None, season_seen=True) == ("bgnbd", "")  # no such model
    # closer, but the window cannot judge it: too few purchases, or a judging fit without the season's factor
    few = MIN_LEVEL_PURCHASES - 1
    level, said = choose_level(actual=few, bgnbd=few * 2, lightgbm=few, season_seen=True)
    assert level == "bgnbd" and f"held {few} purchases (needs {MIN_LEVEL_PURCHASES})" in said
    level, said = choose_level(actual=1000, bgnbd=1200, lightgbm=1030, season_seen=False)
    assert level == "bgnbd" and "no season's factor" in said and "+3.0% against +20.0%" in said


def test_a_judging_fit_with_a_nearly_fixed_dropout_probability_still_forecasts():
    """one_time drawn with seed 1, as of 2025-12-31: the judging fit (as of 2025-01-01) has a and b in the thousands
    (its dropout probability nearly the same for everyone), where the closed form's 2F1 was NaN, the Poisson scale
    0, and train raised ZeroDivisionError. Now the judging window's forecast and every score are finite."""
    tx, as_of = zoo.make_one_time(seed=1).transactions, pd.Timestamp("2025-12-31")
    result = train(until(tx, as_of), as_of=as_of, config=fast_config())
    origin = pd.Timestamp(result.bundle.metadata["backtest_origin"])
    judging = CLVModel().fit(build_features(until(tx, origin), as_of=origin)).bgnbd_params_
    assert origin == pd.Timestamp("2025-01-01") and judging["a"] >= QUADRATURE_FROM_A
    assert np.isfinite(result.metrics["model"]["purchases_total_error_pct"])
    scores = result.bundle.score(until(tx, as_of), as_of=as_of)
    assert np.isfinite(scores[["expected_purchases", "clv", "churn_probability"]].to_numpy()).all()
