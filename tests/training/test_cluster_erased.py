"""The ``--dask`` read leaves out erased customers as the single-process read does (Dask's local scheduler)."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd
import pytest

from churnclv.campaigns import drop_suppressed
from churnclv.training.cluster import customers_present, features_by_partition, without_customers
from tests.conftest import SEED_AS_OF


@pytest.fixture(scope="module")
def by_customer(seed_transactions) -> dd.DataFrame:
    """The seed log in four partitions, each customer's rows in one (as ``read_transactions`` shuffles it)."""
    with dask.config.set({"scheduler": "sync", "dataframe.convert-string": False}):
        return dd.from_pandas(seed_transactions, npartitions=4).shuffle(on="customer_id", npartitions=4).persist()


def test_erased_customers_rows_leave_every_partition_and_are_counted(by_customer, seed_transactions):
    erased = {"C00001", "C00077", "no-such-customer"}
    with dask.config.set({"scheduler": "sync", "dataframe.convert-string": False}):
        assert customers_present(by_customer, erased, None) == (
            int(seed_transactions["customer_id"].isin(erased).sum()), 2)
        kept = without_customers(by_customer, erased).compute()
        features = features_by_partition(without_customers(by_customer, erased), as_of=SEED_AS_OF).compute()
    expected, dropped = drop_suppressed(seed_transactions, erased)  # the single-process rule
    assert dropped > 0 and not kept["customer_id"].isin(erased).any()
    key = ["customer_id", "timestamp", "order_id"]
    pd.testing.assert_frame_equal(kept.sort_values(key, ignore_index=True), expected.sort_values(key, ignore_index=True))
    assert set(features["customer_id"]) == set(seed_transactions["customer_id"]) - erased


def test_nobody_erased_leaves_the_log_as_it_is(by_customer):
    assert without_customers(by_customer, frozenset()) is by_customer
    assert customers_present(by_customer, frozenset(), None) == (0, 0)
