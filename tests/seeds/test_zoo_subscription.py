"""The zoo's subscription shape: a steady monthly rhythm until the last order, touchpoints that announce it."""

from __future__ import annotations

import pandas as pd
import pytest

from churnclv.features import validate_events
from churnclv.seeds.zoo import SUBSCRIPTION_EVENTS, make_subscription


@pytest.fixture(scope="module")
def shape():
    return make_subscription()


def test_the_events_are_in_the_contract_name_the_customers_and_run_past_the_horizon(shape):
    events = shape.events
    clean, rejected = validate_events(events)
    assert len(rejected) == 0
    pd.testing.assert_frame_equal(clean, events)  # canonical as generated: the contract changes nothing
    assert events["timestamp"].is_monotonic_increasing
    assert set(events["customer_id"]) <= set(shape.transactions["customer_id"])
    assert events["timestamp"].max() > shape.as_ofs[0] + pd.Timedelta(days=shape.horizon_days - 7)
    assert set(events["kind"]) >= {"nps", "csat", "complaint", "email_sent", "email_open", "unsubscribe"}
    again = make_subscription(seed=0).events
    pd.testing.assert_frame_equal(again, events)
    assert not make_subscription(seed=1).events.equals(events)


def test_orders_keep_a_steady_rhythm_to_the_last_one(shape):
    """Gaps between a customer's orders vary by about a quarter of their mean (gamma shape 16), the last gap too."""
    orders = shape.transactions.loc[shape.transactions["amount"] > 0].sort_values(["customer_id", "timestamp"])
    gaps = orders.groupby("customer_id")["timestamp"].diff().dt.total_seconds() / 86400
    relative = (gaps / gaps.groupby(orders["customer_id"]).transform("mean")).dropna()
    assert 0.15 < relative.std() < 0.3
    last = relative.groupby(orders.loc[relative.index, "customer_id"]).last()
    assert abs(last.mean() - 1.0) < 0.05  # the last gap is no longer than the others: no slowing before a lapse


def test_the_touchpoints_sour_before_the_last_order(shape):
    """Among customers whose last order came 60 to 150 days before the log's end (cancelled), the 75 days before
    that order hold a lower e-mail open rate and several times the complaints of the earlier days, and most answers
    to the survey in the 120 days before it are a detractor's: the announcement the model can read."""
    tx, events = shape.transactions, shape.events
    orders = tx.loc[tx["amount"] > 0]
    last = orders.groupby("customer_id")["timestamp"].max()
    end = tx["timestamp"].max()
    gone = last[(last < end - pd.Timedelta(days=60)) & (last > end - pd.Timedelta(days=150))]
    mine = events.loc[events["customer_id"].isin(gone.index)]
    before = (gone.reindex(mine["customer_id"]).to_numpy() - mine["timestamp"].to_numpy()) / pd.Timedelta(days=1)
    near = (before >= 0) & (before < SUBSCRIPTION_EVENTS.lapse_window_days)
    early = before >= SUBSCRIPTION_EVENTS.lapse_window_days
    kind = mine["kind"].to_numpy()

    def open_rate(window):
        return (kind[window] == "email_open").sum() / (kind[window] == "email_sent").sum()

    assert open_rate(near) < 0.75 * open_rate(early)
    nps, memory = kind == "nps", SUBSCRIPTION_EVENTS.survey_memory_days  # answers sour over the 120 days before
    detractor = nps & (mine["value"].to_numpy() <= 6)
    soured, calm = (before >= 0) & (before < memory), before >= memory
    assert detractor[soured].sum() / nps[soured].sum() > 0.6 > 0.2 > detractor[calm].sum() / max(nps[calm].sum(), 1)
    # e-mails go out weekly: complaints per e-mail sent is a rate per week
    complaints_per_week = [(kind[w] == "complaint").sum() / (kind[w] == "email_sent").sum() for w in (near, early)]
    assert complaints_per_week[0] > 3 * complaints_per_week[1]


def test_cli_writes_the_events_beside_the_transactions(tmp_path, capsys):
    from churnclv.features import load_events
    from churnclv.seeds.zoo import main

    main(["subscription", "--out", str(tmp_path / "tx.csv"), "--events-out", str(tmp_path / "events.csv"),
          "--customers", "200", "--seed", "4"])
    read = load_events(tmp_path / "events.csv")
    pd.testing.assert_frame_equal(read, make_subscription(seed=4, n_customers=200).events, check_dtype=False)
    with pytest.raises(SystemExit):
        main(["wholesale", "--out", str(tmp_path / "w.csv"), "--events-out", str(tmp_path / "none.csv")])
    assert "has no events" in capsys.readouterr().err and not (tmp_path / "w.csv").exists()
