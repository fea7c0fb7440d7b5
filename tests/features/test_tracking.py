"""The tracking counts: new customers and repeat purchase days per day, by hand; partitions add up."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.features._prep import day_number
from churnclv.features.tracking import Tracking, tracking
from tests.features.frames import frame

ROWS = [
    ("a", "2025-01-30 09:00", 10.0), ("a", "2025-01-30 18:00", 5.0),  # one purchase day
    ("a", "2025-01-31 10:00", 7.0), ("a", "2025-02-02 10:00", 3.0),  # two repeats: January and February
    ("b", "2025-01-31 12:00", 4.0), ("b", "2025-01-31 13:00", -4.0),  # a return is no purchase
    ("b", "2025-02-01 12:00", 9.0), ("b", "2025-02-02 12:00", 1.0),  # two repeats in February
    ("c", "2025-02-02 08:00", 2.0), ("c", "2025-02-03 08:00", 2.0),  # after the as-of day: unseen
]


def test_counts_by_hand():
    track = tracking(frame(ROWS), as_of="2025-02-02")
    assert track.first_day == day_number("2025-01-30")
    np.testing.assert_array_equal(track.days, day_number("2025-01-30") + np.arange(4))
    np.testing.assert_array_equal(track.new, [1, 1, 0, 1])  # a on 30 Jan, b on 31 Jan, c on 2 Feb
    np.testing.assert_array_equal(track.repeats, [0, 1, 1, 2])  # a 31 Jan; b 1 Feb; a and b 2 Feb
    # repeat days per customer and month: a Jan 1, a Feb 1, b Feb 2 -> squares 1 + 1 + 4 over 4 days
    assert (track.clump_squares, track.clump_days) == (6.0, 4.0) and track.clumping == 1.5


def test_partitions_of_customers_add_up_to_the_whole():
    transactions = frame(ROWS)
    whole = tracking(transactions, as_of="2025-02-02")
    parts = [tracking(transactions[transactions["customer_id"].isin(ids)], as_of="2025-02-02")
             for ids in (["a"], ["b", "c"], ["nobody"])]
    merged = Tracking.merge(parts)
    assert merged.first_day == whole.first_day
    np.testing.assert_array_equal(merged.new, whole.new)
    np.testing.assert_array_equal(merged.repeats, whole.repeats)
    assert (merged.clump_squares, merged.clump_days) == (whole.clump_squares, whole.clump_days)


def test_a_log_without_purchases_by_the_as_of_day_counts_nothing():
    track = tracking(frame(ROWS), as_of=pd.Timestamp("2025-01-01"))
    assert track.new.sum() == 0 and track.repeats.sum() == 0 and track.clumping == 1.0
