"""make_labels: the (as_of, as_of + horizon] window, boundary days, who gets a label."""

import numpy as np
import pandas as pd
import pytest

from churnclv.features.build import build_features
from churnclv.features.labels import make_labels
from tests.features.frames import frame

AS_OF = "2024-03-31"


ROWS = [
    ("a", "2024-03-31 23:00", 3.0),                               # on as_of: history, not label
    ("a", "2024-04-01 00:00", 10.0), ("a", "2024-04-01 15:00", 5.0),  # first label day, one day
    ("a", "2024-04-30 23:59", 7.0),                               # as_of + 30: included
    ("a", "2024-05-01 00:00", 100.0),                             # as_of + 31: excluded
    ("a", "2024-04-10", -4.0),                                    # a return: neither count nor spend
    ("b", "2024-01-01", 2.0),                                     # history only -> churned
    ("c", "2024-03-01", -2.0), ("c", "2024-04-02", 9.0),          # no purchase by as_of -> no label
    ("d", "2024-04-03", 9.0),                                     # first buys in the window -> no label
    ("e", "2024-02-01", 1.0), ("e", "2024-04-05", -1.0), ("e", "2024-04-06", 0.0),  # zero-dollar purchase
]


def test_hand_computed_labels():
    got = make_labels(frame(ROWS), as_of=AS_OF, horizon_days=30)
    expected = pd.DataFrame(
        {"purchases": np.array([2, 0, 1], dtype=np.int64), "spend": [22.0, 0.0, 0.0],
         "churned": [False, True, False]},
        index=pd.Index(["a", "b", "e"], dtype="str", name="customer_id"),
    )
    pd.testing.assert_frame_equal(got, expected)


def test_label_customers_are_the_feature_customers():
    tx = frame(ROWS)
    labels = make_labels(tx, as_of=AS_OF, horizon_days=30)
    pd.testing.assert_index_equal(labels.index, build_features(tx, as_of=AS_OF).index)


def test_rows_after_the_horizon_change_nothing():
    tx = frame(ROWS)
    later = frame([("a", "2024-05-01", 1.0), ("b", "2024-06-01", 1.0), ("z", "2024-05-02", 1.0)])
    pd.testing.assert_frame_equal(
        make_labels(pd.concat([tx, later], ignore_index=True), as_of=AS_OF, horizon_days=30),
        make_labels(tx, as_of=AS_OF, horizon_days=30),
    )


def test_one_day_horizon_is_the_next_day_only():
    got = make_labels(frame(ROWS), as_of=AS_OF, horizon_days=1)
    assert got.loc["a", "purchases"] == 1
    assert got.loc["a", "spend"] == 15.0


@pytest.mark.parametrize("bad", [0, -5, 1.5, 30.0, "30", True, None])
def test_horizon_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="horizon_days must be a positive integer"):
        make_labels(frame(ROWS), as_of=AS_OF, horizon_days=bad)


def test_numpy_integer_horizon_is_accepted():
    got = make_labels(frame(ROWS), as_of=AS_OF, horizon_days=np.int64(30))
    assert got.loc["a", "purchases"] == 2
