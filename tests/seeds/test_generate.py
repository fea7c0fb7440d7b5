"""Tests for seeds.generate: BG/NBD moments, lifetimes conventions, the seed sample and its file."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from churnclv.seeds.generate import (
    CATEGORIES,
    CDNOW_LIKE,
    CHANNELS,
    main,
    make_seed_transactions,
    simulate_bgnbd,
    summarise_days,
)

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"
COLUMNS = ["customer_id", "timestamp", "amount", "order_id", "quantity", "channel", "category"]


@pytest.fixture(scope="module")
def one_cohort() -> tuple[pd.DataFrame, float]:
    """200k CDNOW-like customers who all make their first purchase at day 0, observed for 365 days."""
    t = 365.0
    purchases = simulate_bgnbd(
        200_000, **asdict(CDNOW_LIKE), start=0.0, end=t, acquisition_end=1e-9, rng=np.random.default_rng(11)
    )
    return purchases, t


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    return pd.read_csv(SEEDS_DIR / "transactions.csv", parse_dates=["timestamp"])


# --- BG/NBD simulation ---------------------------------------------------------------------------


def test_share_without_repeat_matches_bgnbd_closed_form(one_cohort):
    """P(X(t) = 0) = (alpha / (alpha + t))^r (no dropout before the first repeat purchase)."""
    purchases, t = one_cohort
    repeats = purchases.groupby("customer").size() - 1
    r, alpha = CDNOW_LIKE.r, CDNOW_LIKE.alpha
    expected = (alpha / (alpha + t)) ** r
    observed = (repeats == 0).mean()
    se = np.sqrt(expected * (1 - expected) / len(repeats))
    assert abs(observed - expected) < 4 * se, (observed, expected)


def test_mean_repeat_purchases_match_bgnbd_expectation(one_cohort):
    """E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))] (FHL 2005, eq. 9)."""
    purchases, t = one_cohort
    repeats = purchases.groupby("customer").size() - 1
    r, alpha, a, b = CDNOW_LIKE.r, CDNOW_LIKE.alpha, CDNOW_LIKE.a, CDNOW_LIKE.b
    hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
    expected = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)
    se = repeats.std() / np.sqrt(len(repeats))
    assert abs(repeats.mean() - expected) < 4 * se, (repeats.mean(), expected)


def test_simulated_purchases_are_well_formed():
    purchases = simulate_bgnbd(
        5_000,
        r=0.9,
        alpha=42.0,
        a=0.6,
        b=4.0,
        start=10.0,
        end=400.0,
        acquisition_end=300.0,
        rng=np.random.default_rng(0),
    )
    assert list(purchases.columns) == ["customer", "day", "purchase_number", "to_dropout"]
    assert purchases["customer"].nunique() == 5_000
    first = purchases.loc[purchases["purchase_number"] == 0, "day"]
    assert first.between(10.0, 300.0).all() and (purchases["day"] < 400.0).all()
    by_customer = purchases.groupby("customer")
    assert (by_customer["day"].diff().dropna() > 0).all()
    assert (by_customer.cumcount() == purchases["purchase_number"]).all()
    assert (purchases["to_dropout"] >= 0).all()  # nobody buys after dropping out
    assert (purchases.loc[purchases["purchase_number"] == 0, "to_dropout"] >= 1).all()


def test_simulation_is_deterministic_in_the_generator():
    kwargs = dict(asdict(CDNOW_LIKE), start=0.0, end=200.0)
    one = simulate_bgnbd(1_000, **kwargs, rng=np.random.default_rng(5))
    two = simulate_bgnbd(1_000, **kwargs, rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(one, two)


# --- summaries -----------------------------------------------------------------------------------


def test_summarise_days_follows_lifetimes_conventions_by_hand():
    purchases = pd.DataFrame(
        {"customer": [0, 0, 0, 0, 1, 2, 2], "day": [0.2, 0.9, 5.5, 10.1, 3.7, 2.0, 12.5]}
    )
    summary = summarise_days(purchases, end=12.0)  # last observed calendar day: 11
    expected = pd.DataFrame(
        {"frequency": [2.0, 0.0, 0.0], "recency": [10.0, 0.0, 0.0], "T": [11.0, 8.0, 9.0]},
        index=pd.Index([0, 1, 2], name="customer"),
    )
    pd.testing.assert_frame_equal(summary, expected, check_index_type=False)


def test_summarise_days_matches_lifetimes_on_a_simulation():
    from lifetimes.utils import summary_data_from_transaction_data

    purchases = simulate_bgnbd(
        1_500, r=2.0, alpha=20.0, a=0.6, b=4.0, start=0.0, end=120.0, rng=np.random.default_rng(2)
    )
    start = pd.Timestamp("2024-01-01")
    log = pd.DataFrame(
        {"customer": purchases["customer"], "date": start + pd.to_timedelta(purchases["day"], unit="D")}
    )
    reference = summary_data_from_transaction_data(
        log, "customer", "date", observation_period_end=start + pd.Timedelta(days=119), freq="D"
    )
    ours = summarise_days(purchases, end=120.0).loc[reference.index]
    np.testing.assert_array_equal(ours.to_numpy(), reference[["frequency", "recency", "T"]].to_numpy())


# --- the seed sample -----------------------------------------------------------------------------


def test_seed_transactions_are_deterministic():
    one = make_seed_transactions(300, seed=3)
    pd.testing.assert_frame_equal(one, make_seed_transactions(300, seed=3))
    assert not make_seed_transactions(300, seed=4).equals(one)


def test_seed_transactions_follow_the_canonical_schema():
    tx = make_seed_transactions(500, seed=1)
    assert list(tx.columns) == COLUMNS
    assert tx["customer_id"].dtype == "str" and tx["order_id"].dtype == "str"
    assert tx["timestamp"].dtype == "datetime64[ns]"
    assert tx["amount"].dtype == "float64" and tx["quantity"].dtype == "float64"
    assert tx["customer_id"].str.fullmatch(r"C\d{5}").all()


def test_perturbations_leave_purchase_days_unchanged():
    """Decline, store shift and extra returns touch amounts/channels only, never who buys on which day."""

    def purchase_days(tx: pd.DataFrame) -> pd.DataFrame:
        purchases = tx.loc[tx["amount"] >= 0]
        return purchases.assign(day=purchases["timestamp"].dt.normalize())[
            ["customer_id", "order_id", "day"]
        ].sort_values("order_id", ignore_index=True)

    perturbed = make_seed_transactions(800, seed=2)
    pure = make_seed_transactions(800, seed=2, perturb=False)
    pd.testing.assert_frame_equal(purchase_days(perturbed), purchase_days(pure))
    assert not np.allclose(perturbed["amount"].head(2000), pure["amount"].head(2000))


def test_committed_sample_is_valid(committed):
    tx = committed
    assert list(tx.columns) == COLUMNS
    assert tx["customer_id"].notna().all() and tx["order_id"].notna().all()
    assert np.isfinite(tx["amount"]).all()
    assert (
        tx["timestamp"]
        .between(pd.Timestamp("2024-01-01"), pd.Timestamp("2026-01-01"), inclusive="left")
        .all()
    )
    assert (tx["quantity"] >= 1).all() and tx["quantity"].dtype == "int64"
    assert set(tx["channel"]) == set(CHANNELS) and set(tx["category"]) == set(CATEGORIES)
    assert (tx["timestamp"].dt.normalize() != tx["timestamp"]).any()  # some rows carry a time of day
    purchases, returns = tx.loc[tx["amount"] >= 0], tx.loc[tx["amount"] < 0]
    assert purchases["order_id"].is_unique
    assert 0.03 <= len(returns) / len(tx) <= 0.05
    assert returns["order_id"].str.endswith("-R").all() and returns["order_id"].is_unique
    original = purchases.set_index("order_id").loc[returns["order_id"].str.removesuffix("-R")]
    assert (original["customer_id"].to_numpy() == returns["customer_id"].to_numpy()).all()
    assert (original["timestamp"].to_numpy() < returns["timestamp"].to_numpy()).all()
    assert (-returns["amount"].to_numpy() <= original["amount"].to_numpy() + 1e-9).all()
    assert 3_000 <= tx["customer_id"].nunique() <= 5_000 and 20_000 <= len(tx) <= 60_000
    assert (SEEDS_DIR / "transactions.csv").stat().st_size < 5_000_000


def test_committed_files_equal_a_fresh_generation(tmp_path):
    params = json.loads((SEEDS_DIR / "true_params.json").read_text())
    out = tmp_path / "transactions.csv"
    main(["--customers", str(params["n_customers"]), "--seed", str(params["seed"]), "--out", str(out)])
    assert out.read_bytes() == (SEEDS_DIR / "transactions.csv").read_bytes()
    assert json.loads((tmp_path / "true_params.json").read_text()) == params


# --- the optional simulated campaign ---------------------------------------------------------------


def test_simulated_campaign_is_deterministic_and_stratified():
    from churnclv.seeds.generate import simulate_campaign

    one, two = simulate_campaign(1_000, seed=3), simulate_campaign(1_000, seed=3)
    pd.testing.assert_frame_equal(one.members, two.members)
    pd.testing.assert_frame_equal(one.transactions, two.transactions)
    assert not simulate_campaign(1_000, seed=4).members.equals(one.members)
    counts = one.members.groupby("segment")["group"].agg(size="size", control=lambda g: (g == "control").sum())
    assert (abs(counts["control"] - 0.1 * counts["size"]) < 1).all()
    assert one.members["customer_id"].is_unique and set(one.transactions["customer_id"]) <= set(one.members["customer_id"])
    assert list(one.transactions.columns[:3]) == ["customer_id", "timestamp", "amount"]


def test_simulated_campaign_retention_follows_the_true_effects():
    """Within the window, each segment's retention per group is the stated one (4 standard errors),
    and the sleeping-dog segment loses customers when contacted."""
    from churnclv.seeds.generate import SEED_CAMPAIGN, simulate_campaign

    sim = simulate_campaign(40_000, seed=5, control_share=0.5)
    start = sim.campaign_date + pd.Timedelta(days=1)
    window = sim.transactions.loc[(sim.transactions["timestamp"] >= start)
                                  & (sim.transactions["timestamp"] < start + pd.Timedelta(days=sim.window_days))]
    members = sim.members.assign(retained=sim.members["customer_id"].isin(window["customer_id"]))
    observed = members.groupby(["segment", "group"])["retained"].agg(["mean", "size"])
    for name, effect in SEED_CAMPAIGN.items():
        for group, p in (("treated", effect.retention_treated), ("control", effect.retention_control)):
            mean, size = observed.loc[(name, group)]
            assert abs(mean - p) < 4 * np.sqrt(p * (1 - p) / size), (name, group, mean, p)
    assert SEED_CAMPAIGN["loyal"].effect < 0 < min(e.effect for n, e in SEED_CAMPAIGN.items() if n != "loyal")
    assert (sim.transactions["timestamp"] < sim.campaign_date).sum() == len(sim.members)  # one history order each


def test_the_campaign_files_are_written_only_when_asked(tmp_path):
    out = tmp_path / "transactions.csv"
    main(["--customers", "200", "--seed", "1", "--out", str(out)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transactions.csv", "true_params.json"]
    main(["--customers", "200", "--seed", "1", "--out", str(out), "--campaign", str(tmp_path)])
    truth = json.loads((tmp_path / "campaign_truth.json").read_text())
    assert {s["segment"] for s in truth["segments"]} == {"high_value_at_risk", "at_risk", "steady", "loyal"}
    members = pd.read_csv(tmp_path / "campaign_members.csv")
    assert len(members) == 4000 and set(members["group"]) == {"treated", "control"}
