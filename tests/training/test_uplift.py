"""The per-customer uplift model: Qini by hand, the data threshold, held-out campaigns, the plan it ranks,
registration in a temporary MLflow store.

The simulation: each customer's true retention uplift depends on their features. Customers at middling
risk are the ones a contact saves (Ascarza 2018); the almost-gone are lost causes, however much value is
at risk; frequent, low-risk buyers are sleeping dogs whom a contact makes less likely to stay.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import numpy as np
import pandas as pd
import pytest

from churnclv.campaigns.effect import member_outcomes
from churnclv.scoring.registry import connect
from churnclv.scoring.uplift import (
    UPLIFT_MIN_OUTCOMES,
    UPLIFT_MODEL_NAME,
    UpliftScorer,
    rank_by_uplift,
    readiness,
)
from churnclv.seeds.generate import simulate_campaign
from churnclv.training.uplift import (
    SCORE_FEATURES,
    UpliftSettings,
    campaign_outcomes,
    fit_uplift,
    harmful_segments,
    judge_uplift,
    qini_coefficient,
    qini_curve,
    register_uplift,
    uplift_at_k,
)

FEATURES = ("churn_probability", "clv", "value_at_risk", "frequency", "recency_days")
CONTACT_COST = 5.0


def customers(n: int, *, rng: np.random.Generator) -> pd.DataFrame:
    """Features, scores and the TRUE uplift (and control retention) of ``n`` customers."""
    churn = rng.beta(1.5, 1.5, size=n)
    clv = rng.gamma(2.0, 150.0, size=n)
    frequency = rng.poisson(2 + 12 * (1 - churn))
    recency = rng.uniform(1, 60, size=n) + 200 * churn * rng.random(n)
    dog = (churn < 0.3) & (frequency >= 10)
    lost = churn > 0.75
    uplift = np.select([dog, lost, churn >= 0.3], [-0.12, 0.02, 0.06 + 0.6 * churn * (1 - churn)], default=0.03)
    retention_control = 1 - churn
    return pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n)], "churn_probability": churn, "clv": clv,
        "value_at_risk": churn * clv, "frequency": frequency, "recency_days": recency,
        "segment": np.where(dog, "loyal", np.where(lost, "lost", "other")),
        "true_uplift": np.clip(uplift, -retention_control, 1 - retention_control),
        "retention_control": retention_control,
    })


def campaign(n: int, *, name: str, date: str, control_share: float, seed: int) -> pd.DataFrame:
    """Members of one past campaign (random controls) and whether each was retained."""
    rng = np.random.default_rng(seed)
    members = customers(n, rng=rng)
    treated = rng.random(n) >= control_share
    p = members["retention_control"] + np.where(treated, members["true_uplift"], 0.0)
    return members.assign(campaign=name, campaign_date=pd.Timestamp(date),
                          group=np.where(treated, "treated", "control"), retained=rng.random(n) < p)


def history(*, campaigns: int = 4, size: int = 8_000, control_share: float = 0.1, seed: int = 0) -> pd.DataFrame:
    return pd.concat([campaign(size, name=f"c{i}", date=f"2025-{i + 1:02d}-01", control_share=control_share,
                               seed=seed * 100 + i) for i in range(campaigns)], ignore_index=True)


def net_value(contacted: pd.DataFrame) -> float:
    """What the contacts really earn: Σ clv · true uplift − contact cost."""
    return float((contacted["clv"] * contacted["true_uplift"]).sum() - CONTACT_COST * len(contacted))


# ---------------------------------------------------------------------------------------------- by hand


def test_the_qini_curve_and_coefficient_by_hand():
    uplift, treated, retained = [0.9, 0.8, 0.7, 0.6], [True, False, True, False], [True, False, True, True]
    # k=1: 1 − 0; k=2: 1 − 0·1/1; k=3: 2 − 0·2/1; k=4: 2 − 1·2/2
    np.testing.assert_allclose(qini_curve(uplift, treated, retained), [0, 1, 1, 2, 1])
    # gaps to the random line k/4 · 1: 0.75, 0.5, 1.25, 0 -> mean 0.625, per customer / 4
    assert qini_coefficient(uplift, treated, retained) == pytest.approx(0.15625)
    assert uplift_at_k(uplift, treated, retained, share=0.5) == pytest.approx(1.0)
    assert uplift_at_k(uplift, treated, retained, share=1.0) == pytest.approx(0.5)
    assert np.isnan(uplift_at_k(uplift, treated, retained, share=0.25))  # no control in the top 1
    # the reversed ranking is worse than chance
    assert qini_coefficient(uplift[::-1], treated, retained) < 0


def test_a_random_ranking_has_a_qini_near_zero():
    rng = np.random.default_rng(3)
    treated, retained = rng.random(20_000) < 0.5, rng.random(20_000) < 0.4
    assert abs(qini_coefficient(rng.random(20_000), treated, retained)) < 0.01


# ---------------------------------------------------------------------------------------------- threshold


def test_below_the_threshold_no_model_is_fitted_and_the_answer_says_how_many_more():
    few = campaign(1_500, name="c0", date="2025-01-01", control_share=0.2, seed=1)
    fit = fit_uplift(few, features=FEATURES)
    assert fit.model is None
    assert f"needs {UPLIFT_MIN_OUTCOMES - 1_500:,} more outcomes" in fit.message
    assert "segment rates are used" in fit.message


def test_a_group_with_one_outcome_fits_nothing_and_says_why():
    few = campaign(1_500, name="c0", date="2025-01-01", control_share=0.2, seed=1).assign(retained=True)
    fit = fit_uplift(few, features=FEATURES, settings=UpliftSettings(min_outcomes=1_000, min_per_group=200))
    assert fit.model is None and fit.message.endswith("was not fitted: every treated member was retained")


def test_the_smaller_group_can_be_what_is_missing():
    ready = readiness(np.r_[np.ones(19_500, bool), np.zeros(500, bool)])
    assert not ready.enough and ready.more == 1_500  # 2,000 controls needed, 500 there
    assert readiness(np.r_[np.ones(18_000, bool), np.zeros(2_000, bool)]).enough


# ---------------------------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def past():
    """Four past campaigns of 8,000 members, 10% controls (the product's default share)."""
    return history()


@pytest.fixture(scope="module")
def judged(past):
    return judge_uplift(past, features=FEATURES, holdout_campaigns=1)


@pytest.mark.slow
def test_the_qini_on_a_campaign_it_did_not_see_is_positive(judged):
    assert judged.held_out == ("c3",)
    assert judged.fit.model is not None and judged.fit.readiness.n_treated + judged.fit.readiness.n_control == 24_000
    assert judged.metrics["held_out_members"] == 8_000
    assert judged.metrics["qini"] > 0.01
    assert judged.metrics["uplift_at_10"] > 0 and judged.metrics["uplift_at_20"] > 0


@pytest.mark.slow
def test_at_equal_budget_the_uplift_plan_beats_value_at_risk_by_ten_percent_and_leaves_the_dogs_out(judged, past):
    population = customers(20_000, rng=np.random.default_rng(99))
    scores = pd.concat([population, judged.fit.model.predict(population)], axis=1)
    budget = 4_000
    learned_from = past.loc[~past["campaign"].isin(judged.held_out)]
    harmful = harmful_segments(learned_from)
    assert harmful == {"loyal"}  # measured on the campaigns the model learned from
    plan = rank_by_uplift(scores, contact_cost=CONTACT_COST, budget=budget, harmful_segments=harmful)
    by_risk = scores.nlargest(budget, "value_at_risk")
    assert len(plan.contacts) == budget
    assert net_value(plan.contacts) >= 1.10 * net_value(by_risk)  # measured: 1.36 (262,171 -> 357,491)
    dogs = scores["segment"] == "loyal"
    assert not plan.contacts["customer_id"].isin(scores.loc[dogs, "customer_id"]).any()
    flagged = scores["uplift_high"] < 0  # credibly negative by the customer's own interval
    assert plan.sleeping_dogs == (dogs | flagged).sum() and plan.by_customer == flagged.sum()
    assert (flagged & dogs).sum() >= 0.5 * dogs.sum()  # by their own interval alone (measured: 63%)
    # the bagged interval is not calibrated: it also flags customers of almost no uplift (measured: 824,
    # mostly lost causes, mean true uplift +0.025), whom a plan loses little by leaving out
    assert scores.loc[flagged & ~dogs, "true_uplift"].mean() < 0.05
    without_segments = rank_by_uplift(scores, contact_cost=CONTACT_COST, budget=budget)
    assert without_segments.contacts["segment"].ne("loyal").mean() >= 0.99
    assert (~scores.loc[dogs, "customer_id"].isin(without_segments.contacts["customer_id"])).mean() >= 0.90


def test_the_plan_leaves_out_and_counts_the_credibly_harmful():
    scores = pd.DataFrame({"customer_id": list("abcde"), "clv": [100.0, 200.0, 300.0, 50.0, 400.0],
                           "uplift": [0.2, -0.05, 0.1, 0.01, 0.05], "uplift_high": [0.3, -0.01, 0.2, 0.05, 0.1],
                           "segment": ["x", "x", "y", "x", "loyal"]})
    plan = rank_by_uplift(scores, contact_cost=1.0, budget=2, harmful_segments={"loyal"})
    # values: 19, -11, 29, -0.5, 19
    assert plan.contacts["customer_id"].tolist() == ["c", "a"] and plan.contacts["rank"].tolist() == [1, 2]
    assert (plan.sleeping_dogs, plan.by_customer, plan.by_segment, plan.not_worth_it) == (2, 1, 1, 1)
    assert scores.columns.tolist() == ["customer_id", "clv", "uplift", "uplift_high", "segment"]  # not mutated


# ---------------------------------------------------------------------------------------------- as data


@pytest.fixture(scope="module")
def small_fit():
    settings = UpliftSettings(bags=2, n_estimators=20, min_outcomes=1_000, min_per_group=200)
    return fit_uplift(campaign(3_000, name="c0", date="2025-01-01", control_share=0.3, seed=5), features=FEATURES,
                      settings=settings)


def test_the_model_is_data_and_the_same_settings_give_the_same_model(small_fit):
    again = fit_uplift(campaign(3_000, name="c0", date="2025-01-01", control_share=0.3, seed=5), features=FEATURES,
                       settings=UpliftSettings(bags=2, n_estimators=20, min_outcomes=1_000, min_per_group=200))
    assert again.model.to_dict() == small_fit.model.to_dict()
    frame = customers(50, rng=np.random.default_rng(1))
    loaded = UpliftScorer.from_dict(small_fit.model.to_dict())
    pd.testing.assert_frame_equal(loaded.predict(frame), small_fit.model.predict(frame))


@pytest.mark.slow
def test_it_registers_beside_churn_clv_in_a_temporary_store(tmp_path, small_fit):
    client = connect(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "artifacts")
    run_id, version = register_uplift(client, small_fit.model, metrics={"qini": 0.02, "bad": float("nan")},
                                      artifact_root=tmp_path / "artifacts")
    found = client.get_model_version(UPLIFT_MODEL_NAME, version)
    assert version == "1" and found.run_id == run_id
    assert found.source.startswith(f"{tmp_path / 'artifacts' / 'uplift'}")  # beside the store, never the cwd
    assert not client.get_registered_model(UPLIFT_MODEL_NAME).aliases  # no alias unless asked
    assert client.get_run(run_id).data.metrics == {"qini": 0.02}
    folder = client.download_artifacts(run_id, "uplift", str(tmp_path / "down"))
    frame = customers(50, rng=np.random.default_rng(2))
    pd.testing.assert_frame_equal(UpliftScorer.load(folder).predict(frame), small_fit.model.predict(frame))
    assert register_uplift(client, small_fit.model, metrics={}, alias="champion")[1] == "2"
    assert client.get_model_version_by_alias(UPLIFT_MODEL_NAME, "champion").version in (2, "2")


def test_the_settings_are_frozen():
    with pytest.raises(FrozenInstanceError):
        UpliftSettings().bags = 3  # type: ignore[misc]
    assert replace(UpliftSettings(), bags=3).bags == 3


def test_a_recorded_campaign_becomes_training_rows_with_features_from_before_it():
    sim = simulate_campaign(600, seed=3)
    day = sim.campaign_date.date()
    rows = campaign_outcomes(sim.members, sim.transactions, campaign="seed", campaign_date=day,
                             window_days=sim.window_days, as_of=day)
    assert len(rows) == 600 and rows["customer_id"].tolist() == sim.members["customer_id"].tolist()
    expected = member_outcomes(sim.members, sim.transactions, campaign_date=day, window_days=sim.window_days)
    assert rows["retained"].tolist() == expected["retained"].tolist()
    assert {"frequency", "days_since_last", *SCORE_FEATURES} <= set(rows.columns)
    assert (rows["campaign"] == "seed").all() and (rows["campaign_date"] == sim.campaign_date).all()
    # every member bought once before the campaign and nothing after it is read: one transaction each
    assert (rows["n_transactions"] == 1).all()
    assert rows["group"].eq("control").sum() == sim.members["group"].eq("control").sum()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_gain_holds_on_other_seeds(seed):
    """Other past campaigns, same truth: measured ratios 1.31, 1.38, 1.27 (seed 0: 1.36); Qini 0.020–0.031."""
    past = history(seed=seed)
    judged = judge_uplift(past, features=FEATURES, holdout_campaigns=1)
    assert judged.metrics["qini"] > 0.01
    population = customers(20_000, rng=np.random.default_rng(99))
    scores = pd.concat([population, judged.fit.model.predict(population)], axis=1)
    harmful = harmful_segments(past.loc[~past["campaign"].isin(judged.held_out)])
    plan = rank_by_uplift(scores, contact_cost=CONTACT_COST, budget=4_000, harmful_segments=harmful)
    assert harmful == {"loyal"} and not plan.contacts["segment"].eq("loyal").any()
    assert net_value(plan.contacts) >= 1.10 * net_value(scores.nlargest(4_000, "value_at_risk"))
