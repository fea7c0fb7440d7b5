"""Behaviour features on hand-computed frames (days_ago = as_of day minus purchase day)."""

import math

import numpy as np
import pandas as pd

from churnclv.features.behaviour import BEHAVIOUR_COLUMNS, behaviour_features
from tests.features.frames import canonical

AS_OF = pd.Timestamp("2024-06-30")


def frame(rows, **extra):
    """rows: (customer, days before AS_OF, amount); extra: optional columns, one value per row."""
    ids, days_ago, amount = zip(*rows)
    return canonical(ids, list(AS_OF - pd.to_timedelta(np.array(days_ago), unit="D")), amount, **extra)


ROWS = [
    # a: purchase days (days ago) 400, 200, 100 (two rows), 89, 29, 0; a return 50 days ago
    ("a", 400, 50.0), ("a", 200, 30.0), ("a", 100, 20.0), ("a", 100, 5.0), ("a", 89, 10.0),
    ("a", 29, 8.0), ("a", 0, 2.0), ("a", 50, -15.0),
    # b: a zero-dollar purchase 10 days ago and a return 5 days ago
    ("b", 10, 0.0), ("b", 5, -3.0),
    # c: purchases 120 and 60 days ago
    ("c", 120, 40.0), ("c", 60, 10.0),
    # d: a purchase exactly 30 days ago is outside the 30-day window (as_of - 30, as_of]
    ("d", 30, 7.0),
    # after as_of: ignored
    ("a", -1, 1000.0), ("c", -3, -40.0),
]

NAN = float("nan")
EXPECTED = {
    "a": {
        "purchases_30d": 2, "purchases_90d": 3, "purchases_180d": 4, "purchases_365d": 5,
        "spend_30d": 10, "spend_90d": 20, "spend_180d": 45, "spend_365d": 75,
        "n_transactions": 7, "total_spend": 125, "days_since_last": 0,
        # gaps 200, 100, 11, 60, 29: mean 80, squared deviations 14400+400+4761+400+2601 = 22562
        "gap_mean": 80, "gap_std": math.sqrt(22562 / 4), "gap_last": 29, "overdue_ratio": 0.0,
        "spend_trend": (20 - 25) / 45, "avg_basket": 125 / 7, "return_rate": 15 / 125,
        "n_categories": NAN, "n_channels": NAN,
    },
    "b": {
        "purchases_30d": 1, "purchases_90d": 1, "purchases_180d": 1, "purchases_365d": 1,
        "spend_30d": 0, "spend_90d": 0, "spend_180d": 0, "spend_365d": 0,
        "n_transactions": 1, "total_spend": 0, "days_since_last": 10,
        "gap_mean": NAN, "gap_std": NAN, "gap_last": NAN, "overdue_ratio": NAN,
        "spend_trend": 0.0, "avg_basket": 0.0, "return_rate": NAN,  # returns but nothing spent
        "n_categories": NAN, "n_channels": NAN,
    },
    "c": {
        "purchases_30d": 0, "purchases_90d": 1, "purchases_180d": 2, "purchases_365d": 2,
        "spend_30d": 0, "spend_90d": 10, "spend_180d": 50, "spend_365d": 50,
        "n_transactions": 2, "total_spend": 50, "days_since_last": 60,
        "gap_mean": 60, "gap_std": NAN, "gap_last": 60, "overdue_ratio": 1.0,
        "spend_trend": (10 - 40) / 50, "avg_basket": 25, "return_rate": 0.0,
        "n_categories": NAN, "n_channels": NAN,
    },
    "d": {
        "purchases_30d": 0, "purchases_90d": 1, "purchases_180d": 1, "purchases_365d": 1,
        "spend_30d": 0, "spend_90d": 7, "spend_180d": 7, "spend_365d": 7,
        "n_transactions": 1, "total_spend": 7, "days_since_last": 30,
        "gap_mean": NAN, "gap_std": NAN, "gap_last": NAN, "overdue_ratio": NAN,
        "spend_trend": 1.0, "avg_basket": 7, "return_rate": 0.0,
        "n_categories": NAN, "n_channels": NAN,
    },
}


def test_hand_computed_behaviour():
    got = behaviour_features(frame(ROWS), as_of=AS_OF)
    expected = pd.DataFrame.from_dict(EXPECTED, orient="index").astype(np.float64)
    expected.index = pd.Index(expected.index, dtype="str", name="customer_id")
    assert list(got.columns) == list(BEHAVIOUR_COLUMNS)
    assert (got.dtypes == np.float64).all()
    pd.testing.assert_frame_equal(got, expected[list(BEHAVIOUR_COLUMNS)], check_exact=False, rtol=1e-12)


def test_optional_columns_orders_categories_channels():
    rows = [
        ("a", 5, 10.0), ("a", 5, 5.0), ("a", 3, 7.0), ("a", 2, -3.0), ("a", 1, 4.0), ("a", -2, 9.0),
        ("b", 8, 1.0), ("b", 6, 2.0), ("b", 4, 3.0),
    ]
    tx = frame(
        rows,
        # a: orders o1 (two rows), o2 and o4 -> 3; the return (o3) is not a purchase; o5 is after as_of.
        # b: o1 is another customer's order id too; two rows without an order id count once each.
        order_id=["o1", "o1", "o2", "o3", "o4", "o5", "o1", None, None],
        # a: cd, dvd, book (the return counts: it is one of the customer's rows); a missing value
        # is not a category; games is after as_of.
        category=["cd", "dvd", "cd", "book", None, "games", "cd", "cd", "cd"],
        channel=["web", "web", "store", "web", "web", "app", "app", "app", "app"],
    )
    got = behaviour_features(tx, as_of=AS_OF)
    assert got.loc["a", "n_transactions"] == 3.0
    assert got.loc["b", "n_transactions"] == 3.0
    assert got.loc["a", "avg_basket"] == (10 + 5 + 7 + 4) / 3
    assert got.loc["a", "n_categories"] == 3.0
    assert got.loc["b", "n_categories"] == 1.0
    assert got.loc["a", "n_channels"] == 2.0
    assert got.loc["b", "n_channels"] == 1.0


def test_without_order_id_every_purchase_row_is_a_transaction():
    tx = frame([("a", 5, 10.0), ("a", 5, 5.0), ("a", 3, -2.0)], category=["x", "y", "z"])
    got = behaviour_features(tx, as_of=AS_OF)
    assert got.loc["a", "n_transactions"] == 2.0
    assert got.loc["a", "n_categories"] == 3.0
    assert np.isnan(got.loc["a", "n_channels"])
