"""Drift at score time: PSI by hand, the training range, customers never seen, and the warning on a shifted sample."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churnclv.scoring.drift import (
    FLOOR,
    PSI_WARN,
    drift_counts,
    drift_report,
    feature_reference,
    merge_counts,
    psi,
    reference,
    report_of_counts,
)


def test_psi_by_hand():
    """Ten training deciles of 1..10, every scored customer at 10: one bin holds them all."""
    ref = feature_reference(pd.Series(np.arange(1.0, 11.0)))
    assert ref["shares"] == pytest.approx([0.1] * 10 + [0.0])  # ten bins of one value each, none missing
    assert (ref["min"], ref["max"]) == (1.0, 10.0)
    expected = 9 * (FLOOR - 0.1) * math.log(FLOOR / 0.1) + (1 - 0.1) * math.log(1 / 0.1)  # the missing bin adds 0
    report = drift_report(pd.DataFrame({"x": [10.0] * 5, "T": 400.0}), {"customers": 10, "features": {"x": ref}},
                          as_of="2025-01-01", trained_as_of="2025-01-01")
    assert report["psi"]["x"] == pytest.approx(expected)
    assert report["drifted"] == ["x"] and "x " in report["warning"]
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_outside_the_range_and_never_seen_by_hand():
    train = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "T": [10.0, 20.0, 30.0, 40.0]})
    ref = reference(train, features=["x", "T", "absent"])
    assert set(ref["features"]) == {"x", "T"} and ref["customers"] == 4
    scored = pd.DataFrame({"x": [-1.0, 1.0, 5.0, np.nan], "T": [5.0, 50.0, 100.0, 200.0]})
    report = drift_report(scored, ref, as_of="2025-03-01", trained_as_of="2025-02-01")  # 28 days later
    assert report["outside_by_feature"]["x"] == pytest.approx(2 / 4)  # -1 and 5; a missing value is not outside
    assert report["outside_range"] == pytest.approx(4 / 4)  # T 5 < 10, 50, 100, 200 > 40 ... and x
    assert report["unseen"] == pytest.approx(1 / 4)  # T 5 < 28 days: the first purchase came after training


def test_a_shifted_sample_warns_and_an_unshifted_one_does_not(trained_home, seed_transactions):
    from churnclv.scoring.registry import connect, load_bundle

    bundle = load_bundle(connect(trained_home.tracking_uri, trained_home.home / "mlruns" / "artifacts"),
                         "models:/churn-clv@champion")
    ref = bundle.metadata["drift_reference"]
    assert {"frequency", "recency", "T", "monetary_value"} <= set(ref["features"])
    as_of, trained = trained_home.as_of, bundle.metadata["as_of"]
    rng = np.random.default_rng(3)
    half = rng.choice(seed_transactions["customer_id"].unique(), size=2000, replace=False)
    sample = seed_transactions[seed_transactions["customer_id"].isin(half)]  # half the customers, as they are
    steady = drift_report(bundle.snapshot(sample, as_of=as_of), ref, as_of=as_of, trained_as_of=trained)
    assert steady["warning"] is None and steady["psi_max"] < 0.1 and steady["unseen"] == 0.0
    shifted = sample.assign(amount=sample["amount"] * 4)  # the same customers spending four times as much
    moved = drift_report(bundle.snapshot(shifted, as_of=as_of), ref, as_of=as_of, trained_as_of=trained)
    assert "monetary_value" in moved["drifted"] and moved["psi"]["monetary_value"] > PSI_WARN
    assert moved["warning"].startswith("drift: ") and "monetary_value" in moved["warning"]
    assert moved["outside_range"] > steady["outside_range"]


def test_counts_of_customer_groups_merge_into_the_report_of_all():
    """A cluster's partitions: the report of their merged counts is the whole snapshot's, to the last digit."""
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"x": rng.normal(size=500), "T": rng.uniform(10, 400, 500)})
    ref = reference(train, features=["x", "T"])
    scored = pd.DataFrame({"x": np.r_[rng.normal(0.5, 1.3, 297), [np.nan] * 3], "T": rng.uniform(0, 500, 300)})
    whole = drift_report(scored, ref, as_of="2025-03-01", trained_as_of="2025-02-01")
    groups = [scored.iloc[:0], scored.iloc[:101], scored.iloc[101:250], scored.iloc[250:]]
    merged = report_of_counts(merge_counts(drift_counts(g, ref, as_of="2025-03-01", trained_as_of="2025-02-01")
                                           for g in groups), ref)
    assert merged == whole and whole["customers"] == 300 and 0 < whole["unseen"] < 1
