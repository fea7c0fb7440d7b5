"""RFM on hand-computed frames: lifetimes conventions in days, same-day collapsing, as_of edges."""

import pandas as pd
import pytest

from churnclv.contract.columns import RFM_COLUMNS
from churnclv.features.rfm import rfm_features
from tests.features.frames import canonical

DAY0 = pd.Timestamp("2024-01-01")
AS_OF = "2024-02-10"  # day 40


def frame(rows):
    """rows: (customer, day offset or Timestamp, amount)."""
    ids, ts, amount = zip(*rows)
    return canonical(ids, [t if isinstance(t, pd.Timestamp) else DAY0 + pd.Timedelta(days=t) for t in ts], amount)


ROWS = [
    # a: purchases on day 0 (twice), 10 and 30, a return on day 12
    ("a", 0, 10.0), ("a", DAY0 + pd.Timedelta(hours=20), 5.0), ("a", 10, 20.0), ("a", 30, 30.0), ("a", 12, -7.0),
    # b: one purchase
    ("b", 5, 8.0),
    # c: two purchases at different times of day 20, one late on day 25
    ("c", DAY0 + pd.Timedelta(days=20, hours=9), 12.0), ("c", DAY0 + pd.Timedelta(days=20, hours=18, minutes=30), 3.0),
    ("c", DAY0 + pd.Timedelta(days=25, hours=23, minutes=59), 4.0),
    # d: only a return -> absent
    ("d", 3, -5.0),
    # e: first purchase after as_of (day 41, midnight) -> absent
    ("e", 41, 9.0),
    # f: single purchase in the last second of the as_of day -> included, T = 0
    ("f", DAY0 + pd.Timedelta(days=41) - pd.Timedelta(microseconds=1), 6.0),
    # g: a zero-dollar purchase counts as a purchase day
    ("g", 1, 0.0), ("g", 2, 10.0),
    # a's purchase after as_of must not count
    ("a", 41, 100.0),
]

EXPECTED = pd.DataFrame(
    {
        "frequency": [2.0, 0.0, 1.0, 0.0, 1.0],
        "recency": [30.0, 0.0, 5.0, 0.0, 1.0],
        "T": [40.0, 35.0, 20.0, 0.0, 39.0],
        "monetary_value": [(20.0 + 30.0) / 2, 0.0, 4.0, 0.0, 10.0],
    },
    index=pd.Index(["a", "b", "c", "f", "g"], dtype="str", name="customer_id"),
)


def test_hand_computed_rfm():
    got = rfm_features(frame(ROWS), as_of=AS_OF)
    assert list(got.columns) == list(RFM_COLUMNS)
    pd.testing.assert_frame_equal(got, EXPECTED)


def test_row_order_and_time_of_as_of_do_not_matter():
    tx = frame(ROWS)
    shuffled = tx.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(rfm_features(shuffled, as_of=pd.Timestamp(AS_OF) + pd.Timedelta(hours=7)), EXPECTED)


def test_same_day_purchases_collapse_into_one_day():
    tx = frame([("x", 0, 1.0), ("x", 0, 2.0), ("x", 0, 3.0), ("x", 4, 4.0), ("x", 4, 6.0)])
    got = rfm_features(tx, as_of="2024-01-05").loc["x"]
    assert got["frequency"] == 1.0
    assert got["recency"] == 4.0
    assert got["monetary_value"] == 10.0  # daily spend on day 4, not the mean row amount


def test_input_not_mutated():
    tx = frame(ROWS)
    before = tx.copy()
    rfm_features(tx, as_of=AS_OF)
    pd.testing.assert_frame_equal(tx, before)


def test_rejects_tz_aware_as_of():
    with pytest.raises(ValueError, match="as_of"):
        rfm_features(frame(ROWS), as_of=pd.Timestamp("2024-02-10", tz="UTC"))
