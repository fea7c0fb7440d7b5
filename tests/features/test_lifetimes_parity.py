"""RFM parity with ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")``.

lifetimes 0.11.3 works here on pandas 3 for this function (datetime64[us] and "str" ids
included); it treats every row as a purchase, so the synthetic frame below has no returns.
"""

import importlib.resources

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.columns import RFM_COLUMNS
from churnclv.features.build import build_features

lifetimes_utils = pytest.importorskip("lifetimes.utils")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """The CDNOW master log in canonical form."""
    try:
        from churnclv.features.io import load_transactions
    except ImportError:  # before features.io existed
        load_transactions = None
    if load_transactions is not None:
        return load_transactions("cdnow")
    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": "str", "date": "str"})
    return pd.DataFrame({
        "customer_id": raw["customer_id"].astype("str"),
        "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
        "amount": raw["dollar_value"].astype(float),
    })


def lifetimes_rfm(tx: pd.DataFrame, as_of) -> pd.DataFrame:
    with pd.option_context("mode.chained_assignment", None):
        return lifetimes_utils.summary_data_from_transaction_data(
            tx, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=as_of, freq="D",
        )


def assert_rfm_parity(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    ref = ref.reindex(ours.index)  # same customers, lifetimes' own order differs
    assert not ref.isna().any().any(), "lifetimes has customers build_features lacks"
    assert len(ref) == len(ours)
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(), ref[column].to_numpy(), err_msg=column)
    np.testing.assert_allclose(ours["monetary_value"], ref["monetary_value"], rtol=0, atol=0.005)


@pytest.mark.parametrize("as_of", ["1997-01-15", "1997-03-31", "1997-09-30", "1998-06-30"])
def test_cdnow_rfm_equals_lifetimes(cdnow, as_of):
    assert (cdnow["amount"] >= 0).all()
    ours = build_features(cdnow, as_of=as_of)[list(RFM_COLUMNS)]
    ref = lifetimes_rfm(cdnow, as_of)
    assert set(ref.index) == set(ours.index)
    assert_rfm_parity(ours, ref)


def test_intraday_synthetic_rfm_equals_lifetimes():
    rng = np.random.default_rng(11)
    n = 5000
    tx = pd.DataFrame({
        "customer_id": pd.array([f"id{c}" for c in rng.integers(0, 700, n)], dtype="str"),
        "timestamp": pd.Timestamp("2022-03-01") + pd.to_timedelta(rng.integers(0, 400 * 1440, n), unit="min"),
        "amount": np.round(rng.lognormal(2.5, 1.2, n), 2),
    })
    as_of = "2022-12-31"
    ours = build_features(tx, as_of=as_of)[list(RFM_COLUMNS)]
    ref = lifetimes_rfm(tx, as_of)
    assert set(ref.index) == set(ours.index)
    assert_rfm_parity(ours, ref)
