"""build_features as a whole: schema, determinism, no leakage, as_of edges, partition parity."""

import numpy as np
import pandas as pd
import pytest

from churnclv.features.behaviour import behaviour_features
from churnclv.features.build import FEATURE_COLUMNS, build_features
from churnclv.features.cohorts import cohort_features
from churnclv.features.rfm import rfm_features

AS_OF = pd.Timestamp("2024-06-30")


def random_transactions(seed: int = 0, *, n_rows: int = 4000, n_customers: int = 400,
                        start: str = "2023-01-01", days: int = 700, extras: bool = True) -> pd.DataFrame:
    """Seeded canonical frame with intraday times, same-day repeats, returns, zero-dollar rows
    and (optionally) order ids, channels and categories with missing values."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, n_customers, n_rows)
    minutes = rng.integers(0, days * 24 * 60, n_rows)
    amount = np.round(rng.lognormal(3.0, 1.0, n_rows), 2)
    amount[rng.random(n_rows) < 0.06] *= -1.0
    amount[rng.random(n_rows) < 0.02] = 0.0
    columns = {
        "customer_id": pd.array([f"c{c:05d}" for c in customer], dtype="str"),
        "timestamp": (pd.Timestamp(start) + pd.to_timedelta(minutes, unit="min")).astype("datetime64[ns]"),
        "amount": amount,
    }
    if extras:
        pick = lambda values: pd.array(rng.choice(np.array(values, dtype=object), n_rows), dtype="str")
        columns |= {
            "order_id": pd.array([f"o{k}" for k in rng.integers(0, n_rows // 2, n_rows)], dtype="str"),
            "quantity": rng.integers(1, 4, n_rows).astype(float),
            "channel": pick(["web", "store", "app", None]),
            "category": pick(["cd", "dvd", "book", "games", "toys", None]),
        }
    return pd.DataFrame(columns)


def test_schema_and_dtypes():
    got = build_features(random_transactions(), as_of=AS_OF)
    assert tuple(got.columns) == FEATURE_COLUMNS
    assert got.index.name == "customer_id"
    assert got.index.is_monotonic_increasing and got.index.is_unique
    dtypes = got.dtypes.drop(["cohort", "tenure_months"])
    assert (dtypes == np.float64).all()
    assert got["cohort"].dtype == "str"
    assert got["tenure_months"].dtype == np.int64


def test_empty_history_gives_an_empty_frame_with_the_same_schema():
    tx = random_transactions()
    empty = build_features(tx, as_of="2000-01-01")
    assert len(empty) == 0
    pd.testing.assert_series_equal(empty.dtypes, build_features(tx, as_of=AS_OF).dtypes)
    pd.testing.assert_frame_equal(build_features(tx.iloc[:0], as_of=AS_OF), empty)


def test_equals_the_family_functions():
    tx = random_transactions()
    parts = [f(tx, as_of=AS_OF) for f in (rfm_features, behaviour_features, cohort_features)]
    pd.testing.assert_frame_equal(build_features(tx, as_of=AS_OF), pd.concat(parts, axis=1))


def test_deterministic_and_independent_of_row_order():
    tx = random_transactions()
    first = build_features(tx, as_of=AS_OF)
    pd.testing.assert_frame_equal(build_features(tx, as_of=AS_OF), first)
    shuffled = tx.sample(frac=1.0, random_state=7).reset_index(drop=True)
    pd.testing.assert_frame_equal(build_features(shuffled, as_of=AS_OF), first, check_exact=False, rtol=1e-12)


def test_no_leakage_from_rows_after_as_of():
    tx = random_transactions(seed=1)
    future = random_transactions(seed=2, n_customers=600, start="2024-07-01", days=200)  # new and known ids
    assert future["timestamp"].min() >= AS_OF + pd.Timedelta(days=1)
    both = pd.concat([tx, future], ignore_index=True)
    pd.testing.assert_frame_equal(build_features(both, as_of=AS_OF), build_features(tx, as_of=AS_OF))


def test_customers_who_first_buy_after_as_of_are_absent():
    tx = random_transactions(seed=3)
    got = build_features(tx, as_of=AS_OF)
    history = tx[(tx["timestamp"] < AS_OF + pd.Timedelta(days=1)) & (tx["amount"] >= 0)]
    assert set(got.index) == set(history["customer_id"])


def test_the_whole_as_of_day_is_included():
    tx = random_transactions(seed=4)
    last_moment = AS_OF + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    extra = pd.DataFrame({"customer_id": pd.array(["zz-late"], dtype="str"),
                          "timestamp": pd.Series([last_moment]).astype("datetime64[ns]"), "amount": [5.0]})
    got = build_features(pd.concat([tx, extra], ignore_index=True), as_of=AS_OF + pd.Timedelta(hours=9))
    assert got.loc["zz-late", "T"] == 0.0
    assert got.loc["zz-late", "purchases_30d"] == 1.0
    pd.testing.assert_frame_equal(got, build_features(pd.concat([tx, extra]), as_of=AS_OF.date()))


def test_input_frame_is_not_mutated():
    tx = random_transactions()
    before = tx.copy()
    build_features(tx, as_of=AS_OF)
    pd.testing.assert_frame_equal(tx, before)


def _partition(tx: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """Split customers (not rows) into n partitions by a hash of the id."""
    bucket = pd.util.hash_pandas_object(tx["customer_id"], index=False).to_numpy() % n
    return [tx[bucket == k] for k in range(n)]


@pytest.mark.parametrize("extras", [True, False])
def test_partitions_of_customers_give_the_full_result(extras):
    tx = random_transactions(seed=5, extras=extras)
    parts = [build_features(p, as_of=AS_OF) for p in _partition(tx, 3)]
    pd.testing.assert_frame_equal(pd.concat(parts).sort_index(), build_features(tx, as_of=AS_OF))


def test_dask_map_partitions_by_customer_gives_the_full_result():
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    tx = random_transactions(seed=6)
    full = build_features(tx, as_of=AS_OF)
    with dask.config.set({"dataframe.convert-string": False, "scheduler": "synchronous"}):
        by_customer = dd.from_pandas(tx.set_index("customer_id").sort_index(), npartitions=3, sort=True)
        assert by_customer.npartitions == 3
        got = by_customer.map_partitions(
            lambda part: build_features(part.reset_index(), as_of=AS_OF),
            meta=build_features(tx.iloc[:0], as_of=AS_OF),
        ).compute()
    pd.testing.assert_frame_equal(got, full)


@pytest.mark.parametrize("ids", [
    [f"{i:05d}" for i in (907, 3, 44, 12000, 5)],          # fixed width: integer-key fast path
    [f"CUST-{i:07d}" for i in (907, 3, 44, 12000, 5)],     # common prefix, 7 varying bytes
    [f"{i:012d}" for i in (10**11, 3, 10**10 + 7, 44)],    # fixed width, > 8 varying bytes
    ["b", "a10", "a9", "", "é", "z€", "a\x00"],            # variable length, non-ASCII, NUL
])
def test_customer_ids_sort_like_python_strings(ids):
    rows = len(ids)
    tx = pd.DataFrame({
        "customer_id": pd.array(ids, dtype="str"),
        "timestamp": pd.Series(pd.date_range("2024-01-01", periods=rows, freq="D")).astype("datetime64[ns]"),
        "amount": np.ones(rows),
    })
    assert build_features(tx, as_of=AS_OF).index.tolist() == sorted(ids)


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_timestamp_resolution_does_not_matter(unit):
    tx = random_transactions(seed=8, extras=False)
    coarse = tx.assign(timestamp=tx["timestamp"].dt.floor("s").astype(f"datetime64[{unit}]"))
    pd.testing.assert_frame_equal(build_features(coarse, as_of=AS_OF), build_features(tx, as_of=AS_OF))


def test_object_dtype_ids_give_the_same_features():
    tx = random_transactions(seed=9)
    as_objects = tx.assign(customer_id=tx["customer_id"].astype(object))
    pd.testing.assert_frame_equal(
        build_features(as_objects, as_of=AS_OF), build_features(tx, as_of=AS_OF), check_index_type=False,
    )


def test_missing_customer_ids_are_rejected():
    tx = random_transactions(seed=10, extras=False)
    tx.loc[3, "customer_id"] = None
    with pytest.raises(ValueError, match="customer_id has 1 missing"):
        build_features(tx, as_of=AS_OF)
