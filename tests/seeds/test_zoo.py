"""Tests for seeds.zoo: every shape is deterministic, canonical, covers its future, and has the
property that defines it, measured on the generated log with a threshold that can be checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnclv.seeds.zoo import DESCRIPTIONS, SHAPES, Shape, main

COLUMNS = ["customer_id", "timestamp", "amount", "order_id", "quantity", "channel", "category"]
NAMES = list(SHAPES)
#: Days from the first calendar day of the log to the (latest) as-of date.
HISTORY_DAYS = {
    "one_time": 730,
    "no_dropout": 730,
    "all_drop": 730,
    "seasonal_q4": 1095,
    "bursts": 1003,
    "young": 213,
    "events": 1095,
    "wholesale": 305,
    "grocery": 548,
    "returns": 730,
    "donations": 1399,
    "retail_q4": 2191,
    "subscription": 730,
}


@pytest.fixture(scope="module")
def shapes() -> dict[str, Shape]:
    return {name: make() for name, make in SHAPES.items()}


def purchases(tx: pd.DataFrame) -> pd.DataFrame:
    return tx.loc[tx["amount"] >= 0]


def per_customer(tx: pd.DataFrame) -> pd.Series:
    """Purchase rows per customer over the whole log."""
    return purchases(tx).groupby("customer_id").size()


def days_after(timestamps: pd.Series, start: str) -> np.ndarray:
    """Whole calendar days after ``start``."""
    return ((timestamps.dt.normalize() - pd.Timestamp(start)).dt.days).to_numpy()


# --- every shape ---------------------------------------------------------------------------------


def test_registry_matches_descriptions():
    assert list(SHAPES) == list(DESCRIPTIONS) and len(SHAPES) == 13
    assert all(len(d) <= 110 and "\n" not in d for d in DESCRIPTIONS.values())


@pytest.mark.parametrize("name", NAMES)
def test_shape_is_deterministic_in_the_seed(shapes, name):
    shape = shapes[name]
    again = SHAPES[name](seed=0)
    pd.testing.assert_frame_equal(shape.transactions, again.transactions)
    assert again.as_ofs == shape.as_ofs and again.truth == shape.truth
    other = SHAPES[name](seed=1).transactions
    assert len(other) != len(shape.transactions) or not other.equals(shape.transactions)


@pytest.mark.parametrize("name", NAMES)
def test_shape_is_canonical_and_small(shapes, name):
    shape = shapes[name]
    tx = shape.transactions
    assert shape.name == name and shape.description == DESCRIPTIONS[name]
    assert list(tx.columns) == COLUMNS
    assert tx["customer_id"].dtype == "str" and tx["order_id"].dtype == "str"
    assert tx["timestamp"].dtype == "datetime64[ns]" and tx["timestamp"].dt.tz is None
    assert tx["amount"].dtype == "float64" and tx["quantity"].dtype == "float64"
    assert not tx.isna().any().any() and np.isfinite(tx["amount"]).all()
    assert tx["timestamp"].is_monotonic_increasing and tx["customer_id"].str.fullmatch(r"C\d{5}").all()
    assert purchases(tx)["order_id"].is_unique and (tx["quantity"] >= 1).all()
    customers, rows = tx["customer_id"].nunique(), len(tx)
    low, high = (300, 600) if name == "wholesale" else (1_500, 4_000)
    assert low <= customers <= high and rows < 60_000, (customers, rows)


@pytest.mark.parametrize("name", NAMES)
def test_log_covers_history_and_the_future(shapes, name):
    shape = shapes[name]
    ts = shape.transactions["timestamp"]
    last_as_of = max(shape.as_ofs)
    assert shape.horizon_days == 90
    assert all(d == d.normalize() and d.tz is None for d in shape.as_ofs)
    assert ts.max() >= last_as_of + pd.Timedelta(days=shape.horizon_days)  # the whole horizon is observed
    assert ts.max() < pd.Timestamp(shape.truth["end"]) + pd.Timedelta(days=1)
    assert pd.Timestamp(shape.truth["end"]) <= last_as_of + pd.Timedelta(days=shape.horizon_days + 14)
    history = (last_as_of - ts.min().normalize()).days
    assert HISTORY_DAYS[name] - 14 <= history <= HISTORY_DAYS[name]  # events: the first gift is not on day 0


@pytest.mark.parametrize("name", NAMES)
def test_truth_is_json_and_consistent(shapes, name):
    shape = shapes[name]
    truth = json.loads(json.dumps(shape.truth))
    assert truth["shape"] == name and truth["horizon_days"] == shape.horizon_days
    assert truth["as_ofs"] == [d.date().isoformat() for d in shape.as_ofs]
    assert truth["n_customers"] == shape.transactions["customer_id"].nunique()
    seen = purchases(shape.transactions).groupby("customer_id")["timestamp"].min()
    for as_of in shape.as_ofs:
        facts = truth["at_as_of"][as_of.date().isoformat()]
        assert facts["customers"] == (seen < as_of + pd.Timedelta(days=1)).sum()
        assert 0.0 <= facts["alive_share"] <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_shape_passes_the_transaction_contract(shapes, name):
    from churnclv.features import validate_transactions

    tx = shapes[name].transactions
    clean, rejected = validate_transactions(tx)
    assert len(rejected) == 0 and len(clean) == len(tx)


@pytest.mark.parametrize("name", NAMES)
def test_returns_follow_their_order(shapes, name):
    """A return is the same customer's order, 2-14 days later, for at most the order's amount."""
    tx = shapes[name].transactions
    returns = tx.loc[tx["amount"] < 0]
    assert returns["order_id"].str.endswith("-R").all() and returns["order_id"].is_unique
    order = purchases(tx).set_index("order_id").loc[returns["order_id"].str.removesuffix("-R")]
    assert (order["customer_id"].to_numpy() == returns["customer_id"].to_numpy()).all()
    lag = (returns["timestamp"].to_numpy() - order["timestamp"].to_numpy()) / pd.Timedelta(days=1)
    assert ((lag > 1.0) & (lag < 15.0)).all()
    assert (-returns["amount"].to_numpy() <= order["amount"].to_numpy() + 1e-9).all()


# --- the defining property of each shape ---------------------------------------------------------


def test_one_time_buyers_never_come_back(shapes):
    """≥ 90% buy once: 90% one-and-done plus the BG/NBD customers with no repeat (≈ 0.92)."""
    once = (per_customer(shapes["one_time"].transactions) == 1).mean()
    assert once >= 0.9, once


def test_no_dropout_keeps_buying_as_much_in_the_second_year(shapes):
    """Customers acquired in the first 180 days buy as often in days 500-819 as in days 180-499 (ratio
    ≈ 1 ± 0.03 over seeds; the BG/NBD returns shape, with dropout, gives ≈ 0.68)."""

    def ratio(tx: pd.DataFrame) -> float:
        bought = purchases(tx)
        day = days_after(bought["timestamp"], "2024-01-01")
        first = bought.assign(day=day).groupby("customer_id")["day"].transform("min").to_numpy()
        early = first < 180
        return ((early & (day >= 500) & (day < 820)).sum()) / ((early & (day >= 180) & (day < 500)).sum())

    assert 0.9 <= ratio(shapes["no_dropout"].transactions) <= 1.1
    assert ratio(shapes["returns"].transactions) < 0.8
    assert shapes["no_dropout"].truth["at_as_of"]["2025-12-31"]["alive_share"] == 1.0


def test_all_drop_rarely_buys_a_third_time(shapes):
    """P(3rd purchase | 2nd) ≈ 1 - E[p] = 0.25 times the chance it falls inside the log."""
    n = per_customer(shapes["all_drop"].transactions)
    assert (n >= 3).sum() / (n >= 2).sum() <= 0.35
    assert shapes["all_drop"].truth["bgnbd"]["mean_dropout"] >= 0.7


def test_seasonal_q4_peaks_in_october_to_december(shapes):
    """Purchases per day in Oct-Dec ≥ 2× the rest (intensity and acquisition are 3×)."""
    shape = shapes["seasonal_q4"]
    month = purchases(shape.transactions)["timestamp"].dt.month
    days = pd.date_range("2023-01-01", "2026-03-31", freq="D").month
    q4_rate = (month >= 10).sum() / (days >= 10).sum()
    rest_rate = (month < 10).sum() / (days < 10).sum()
    assert q4_rate >= 2 * rest_rate, (q4_rate, rest_rate)
    first = shape.transactions["timestamp"].min()
    as_ofs = {d.strftime("%m-%d"): d for d in shape.as_ofs}
    assert {"09-30", "12-31"} <= set(as_ofs)
    assert all((d - first).days >= 730 for d in as_ofs.values())


@pytest.mark.parametrize("name", ["young", "wholesale"])
def test_young_logs_hold_under_a_year_of_history(shapes, name):
    shape = shapes[name]
    history = (max(shape.as_ofs) - shape.transactions["timestamp"].min().normalize()).days
    assert 150 <= history < 365


def test_donations_come_in_two_giving_weeks_and_the_windows_behind_the_as_of_dates_hold_none(shapes):
    """≥ 90% of gifts within a week of an event's first day, 55-67% of donors give once; behind every as-of
    date the quarter holds no event, ahead of it one (what makes the backtest window unable to judge)."""
    shape = shapes["donations"]
    gifts = purchases(shape.transactions)["timestamp"].to_numpy()
    events = pd.to_datetime(shape.truth["events"]).to_numpy()
    assert {d[5:] for d in shape.truth["events"]} == {"01-08", "07-08"}
    before = np.searchsorted(events, gifts, side="right") - 1
    lag = (gifts - events[np.maximum(before, 0)]) / pd.Timedelta(days=1)
    assert np.mean((before >= 0) & (lag < 7)) >= 0.9
    assert 0.55 <= (per_customer(shape.transactions) == 1).mean() <= 0.67
    for as_of in shape.as_ofs:
        window = pd.Timedelta(days=shape.horizon_days)
        assert not ((events > as_of - window) & (events <= as_of)).any()
        assert ((events > as_of) & (events <= as_of + window)).any()


def test_retail_q4_buys_twice_as_much_in_december_as_in_january_every_year(shapes):
    tx = purchases(shapes["retail_q4"].transactions)
    month = tx.groupby([tx["timestamp"].dt.year, tx["timestamp"].dt.month]).size().unstack()
    years = month.index[1:-1]  # whole years after the first, whose base is still growing
    assert (month.loc[years, 12] >= 2 * month.loc[years, 1]).all()
    assert len(shapes["retail_q4"].as_ofs) == 4 and {d.month for d in shapes["retail_q4"].as_ofs} == {3, 6, 9, 12}


def test_events_gifts_come_within_two_weeks_of_an_appeal(shapes):
    """≥ 70% of gifts within 14 days after an appeal (lag Gamma(1.5, 3): 98%; ~20% of gifts are not
    answers to an appeal), and about 60% of donors give once."""
    shape = shapes["events"]
    gifts = purchases(shape.transactions)["timestamp"].to_numpy()
    events = pd.to_datetime(shape.truth["events"]).to_numpy()
    assert {d[5:] for d in shape.truth["events"]} == {"04-20", "12-01"}
    before = np.searchsorted(events, gifts, side="right") - 1
    lag = (gifts - events[np.maximum(before, 0)]) / pd.Timedelta(days=1)
    assert np.mean((before >= 0) & (lag < 14)) >= 0.7
    assert 0.5 <= (per_customer(shape.transactions) == 1).mean() <= 0.7
    as_of = shape.as_ofs[0]
    horizon = (events > as_of) & (events <= as_of + pd.Timedelta(days=shape.horizon_days))
    assert horizon.any()  # the future window holds an appeal
    assert (shape.transactions["amount"] % 5 == 0).all()


def test_wholesale_orders_are_large_and_regular(shapes):
    """Gamma(4) gaps have a coefficient of variation of 0.5 (Poisson: 1); orders in the hundreds+."""
    bought = purchases(shapes["wholesale"].transactions).sort_values(["customer_id", "timestamp"])
    gap = bought.groupby("customer_id")["timestamp"].diff() / pd.Timedelta(days=1)
    stats = gap.groupby(bought["customer_id"]).agg(["mean", "std", "count"])
    cv = (stats["std"] / stats["mean"]).loc[stats["count"] >= 3]
    assert cv.median() < 0.6, cv.median()
    assert bought["amount"].median() >= 300 and bought["amount"].quantile(0.9) >= 1_000


def test_grocery_customers_shop_several_times_a_week(shapes):
    """Many customers buy ≥ 2 times a week over their active span, some several times a day."""
    bought = purchases(shapes["grocery"].transactions)
    by = bought.groupby("customer_id")["timestamp"]
    n, span_weeks = by.size(), (by.max() - by.min()) / pd.Timedelta(weeks=1)
    rate = ((n - 1) / span_weeks).loc[n >= 5]
    assert (rate >= 2).mean() >= 0.3, (rate >= 2).mean()
    per_day = bought.groupby(["customer_id", bought["timestamp"].dt.normalize()]).size()
    assert (per_day >= 2).mean() >= 0.02


def test_returns_shape_returns_a_quarter_of_orders(shapes):
    """≈ 25% of orders are returned (Beta per customer, mean 0.25): negative rows ≈ 0.25 / 1.25."""
    tx = shapes["returns"].transactions
    assert (tx["amount"] < 0).mean() >= 0.15
    assert 0.2 <= (tx["amount"] < 0).sum() / (tx["amount"] >= 0).sum() <= 0.3


# --- command line --------------------------------------------------------------------------------


def test_cli_lists_the_shapes(capsys):
    main(["--list"])
    out = capsys.readouterr().out
    assert all(name in out for name in SHAPES)


def test_cli_writes_a_shape(tmp_path, capsys):
    out, truth = tmp_path / "w.csv", tmp_path / "w.json"
    main(["wholesale", "--out", str(out), "--seed", "3", "--customers", "50", "--truth", str(truth)])
    written = pd.read_csv(out, parse_dates=["timestamp"])
    shape = SHAPES["wholesale"](seed=3, n_customers=50)
    assert len(written) == len(shape.transactions) and written["customer_id"].nunique() == 50
    np.testing.assert_allclose(written["amount"], shape.transactions["amount"])
    assert json.loads(truth.read_text())["seed"] == 3
    assert "2025-12-31" in capsys.readouterr().out


def test_cli_needs_a_name_and_an_output():
    with pytest.raises(SystemExit):
        main(["wholesale"])
