"""Control groups: deterministic, stratified within one customer of the share, independent per campaign."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from churnclv.campaigns.assign import GLOBAL_HOLDOUT_SALT, assign_groups, customer_hash, in_global_holdout
from churnclv.campaigns.errors import CampaignInputError
from tests.campaigns.conftest import make_selected


def test_customer_hash_is_blake2b_of_salt_separator_and_id():
    expected = int.from_bytes(hashlib.blake2b(b"spring\x1fC000001", digest_size=8).digest(), "little")
    assert customer_hash(["C000001"], salt="spring")[0] == expected
    assert customer_hash([], salt="x").shape == (0,)


def test_the_smallest_hashes_of_each_segment_are_the_controls_by_hand():
    frame = pd.DataFrame({"customer_id": [f"K{i}" for i in range(10)], "segment": ["a"] * 6 + ["b"] * 4})
    groups = assign_groups(frame, campaign="autumn", control_share=0.25)
    hashes = customer_hash(frame["customer_id"], salt="autumn")
    # a: 0.25 * 6 = 1.5 -> 2 controls; b: 0.25 * 4 = 1 control
    expected_a = set(frame["customer_id"][:6].to_numpy()[np.argsort(hashes[:6])[:2]])
    expected_b = set(frame["customer_id"][6:].to_numpy()[np.argsort(hashes[6:])[:1]])
    assert set(groups.loc[groups["group"] == "control", "customer_id"]) == expected_a | expected_b


def test_same_input_gives_same_groups_whatever_the_row_order():
    frame = make_selected(2_000, seed=3)
    one = assign_groups(frame, campaign="c1", control_share=0.1)
    two = assign_groups(frame.sample(frac=1.0, random_state=5), campaign="c1", control_share=0.1)
    pd.testing.assert_series_equal(one.set_index("customer_id")["group"],
                                   two.set_index("customer_id")["group"].loc[one["customer_id"]])
    assert "group" not in frame.columns  # the input is not changed


@pytest.mark.parametrize("share", [0.0, 0.01, 0.1, 0.333, 0.5, 0.9])
@pytest.mark.parametrize("n", [1, 7, 250, 3_001])
def test_control_count_in_every_segment_is_within_one_customer_of_the_share(share, n):
    frame = make_selected(n, seed=n, segments=("a", "b", "c", "d", "e"))
    groups = assign_groups(frame, campaign=f"share-{share}", control_share=share)
    per_segment = groups.groupby("segment")["group"].agg(size="size", control=lambda g: (g == "control").sum())
    assert (abs(per_segment["control"] - share * per_segment["size"]) < 1).all(), per_segment


def test_campaigns_draw_independent_control_groups():
    frame = make_selected(5_000, seed=1)
    one = assign_groups(frame, campaign="january", control_share=0.2)["group"] == "control"
    two = assign_groups(frame, campaign="february", control_share=0.2)["group"] == "control"
    overlap = (one & two).sum() / one.sum()
    assert 0.12 < overlap < 0.28  # independent: about 20% of one's controls are the other's


def test_share_zero_holds_nobody_out_and_bad_shares_are_refused():
    frame = make_selected(100)
    assert (assign_groups(frame, campaign="x", control_share=0)["group"] == "treated").all()
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(CampaignInputError, match="control share"):
            assign_groups(frame, campaign="x", control_share=bad)


def test_bad_selections_are_named():
    with pytest.raises(CampaignInputError, match="segment"):
        assign_groups(pd.DataFrame({"customer_id": ["a"]}), campaign="x", control_share=0.1)
    with pytest.raises(CampaignInputError, match="twice"):
        assign_groups(pd.DataFrame({"customer_id": ["a", "a"], "segment": ["s", "s"]}), campaign="x",
                      control_share=0.1)


def test_global_holdout_is_fixed_nested_and_near_its_share():
    ids = [f"C{i:06d}" for i in range(20_000)]
    five, ten = in_global_holdout(ids, share=0.05), in_global_holdout(ids, share=0.10)
    assert abs(five.mean() - 0.05) < 0.006 and abs(ten.mean() - 0.10) < 0.008
    assert not (five & ~ten).any()  # whoever a 5% holdout keeps, a 10% one keeps too
    np.testing.assert_array_equal(five, customer_hash(ids, salt=GLOBAL_HOLDOUT_SALT) / 2.0**64 < 0.05)
    assert not in_global_holdout(ids, share=0.0).any()
