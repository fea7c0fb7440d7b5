"""features.online: posted rows encoded without the frame machinery give the batch features to the last digit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.columns import TRANSACTION_COLUMNS, TRANSACTION_REQUIRED
from churnclv.features import build_features, validate_transactions
from churnclv.features.online import encode_posted, rows_until

AS_OF = pd.Timestamp("2025-06-30")


def raw_frame(columns: dict[str, list]) -> pd.DataFrame:
    """The rows as the service hands them to the contract (object columns, unused optional ones left out)."""
    return pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in columns.items()
                         if n in TRANSACTION_REQUIRED or any(x is not None for x in v)})


def random_history(rng: np.random.Generator) -> dict[str, list]:
    """1 to 4 customers (ids as text or numbers) with 1 to 30 rows: same-day purchases, returns, lines of
    one order, a customer with a single purchase, rows after the as-of day; each optional column given for
    none, some or all rows."""
    columns: dict[str, list] = {n: [] for n in TRANSACTION_COLUMNS}
    optional = {n: rng.choice(["none", "some", "all"]) for n in ("order_id", "channel", "category", "quantity")}
    order = 0
    for _ in range(int(rng.integers(1, 5))):
        cid = f"C{rng.integers(0, 10_000):05d}" if rng.random() < 0.8 else int(rng.integers(1, 10**6))
        first = AS_OF - pd.Timedelta(days=int(rng.integers(0, 900)))
        n_orders = 1 if rng.random() < 0.25 else int(rng.integers(1, 12))
        for _ in range(n_orders):
            day = first + pd.Timedelta(days=int(rng.integers(0, 1000)) if rng.random() < 0.8 else 0)
            order += 1
            for _line in range(1 if rng.random() < 0.6 else int(rng.integers(2, 4))):
                stamp = day + pd.Timedelta(seconds=int(rng.integers(0, 86_400)))
                amount = float(np.round(rng.lognormal(3, 1), 2))
                if rng.random() < 0.12:
                    amount = -amount  # a return
                elif rng.random() < 0.05:
                    amount = 0.0
                columns["customer_id"].append(cid)
                columns["timestamp"].append(stamp.isoformat() if rng.random() < 0.8 else f"{stamp:%Y-%m-%d}")
                columns["amount"].append(amount)
                given = {n: optional[n] == "all" or (optional[n] == "some" and rng.random() < 0.5) for n in optional}
                columns["order_id"].append((f"O{order}" if rng.random() < 0.7 else order) if given["order_id"] else None)
                columns["channel"].append(str(rng.choice(["web", "store", "app"])) if given["channel"] else None)
                columns["category"].append(f"cat{rng.integers(0, 6)}" if given["category"] else None)
                columns["quantity"].append(float(rng.integers(1, 4)) if given["quantity"] else None)
    return columns


def batch_features(columns: dict[str, list], as_of) -> pd.DataFrame:
    clean, _ = validate_transactions(raw_frame(columns))
    return build_features(clean, as_of=as_of)


@pytest.mark.parametrize("seed", range(8))
def test_online_features_equal_the_batch_to_the_last_digit(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(25):
        columns = random_history(rng)
        enc = encode_posted(columns)
        assert enc is not None, columns  # plain rows: the fast path takes them
        for as_of in (AS_OF, AS_OF - pd.Timedelta(days=int(rng.integers(1, 400)))):
            want = batch_features(columns, as_of)
            got = build_features(enc, as_of=as_of)
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            stamps = pd.to_datetime(pd.Series(columns["timestamp"]), format="ISO8601")
            assert rows_until(enc, as_of.date()) == int((stamps < as_of + pd.Timedelta(days=1)).sum())
            checked += len(want)
    assert checked > 60  # the histories did hold customers with purchases by the as-of day


def test_the_cases_named_in_the_issue_by_hand():
    """A single purchase, two purchases on one day, a return, an order of two lines: hand-computed values."""
    columns = {"customer_id": ["a", "b", "b", "b", "b"],
               "timestamp": ["2025-06-01T10:00:00", "2025-05-01T09:00:00", "2025-05-01T18:30:00", "2025-06-10",
                             "2025-06-20T12:00:00"],
               "amount": [30.0, 10.0, 5.0, 40.0, -8.0],
               "order_id": ["o1", "o2", "o3", "o4", "o4"]}
    got = build_features(encode_posted(columns), as_of="2025-06-30")
    pd.testing.assert_frame_equal(got, batch_features(columns, "2025-06-30"), check_exact=True)
    a, b = got.loc["a"], got.loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (0, 0, 29, 0)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (1, 40, 60, 40.0)
    assert (b["n_transactions"], b["total_spend"], b["return_rate"]) == (3, 55.0, 8.0 / 55.0)


@pytest.mark.parametrize("change", [
    {"customer_id": [" a", "a"]},                    # the contract strips it
    {"customer_id": ["", "a"]},                      # the contract names it
    {"timestamp": ["2025-01-01T10:00:00+02:00", "2025-02-01"]},  # converted to UTC by the contract
    {"timestamp": ["01/02/2025", "2025-02-01"]},     # another format: the contract infers it
    {"timestamp": ["2025-02-30", "2025-02-01"]},
    {"timestamp": ["1899-12-31", "2025-02-01"]},
    {"amount": ["12.50", 3.0]},                      # text: the contract reads money
    {"amount": [float("inf"), 3.0]},
    {"quantity": ["2", None]},
    {"channel": ["web ", None]},
    {"order_id": ["o1", "o1"], "timestamp": ["2025-01-01", "2025-01-01"], "amount": [5.0, 5.0]},  # a line twice
])
def test_rows_the_contract_would_change_or_judge_go_its_way(change):
    columns = {"customer_id": ["a", "a"], "timestamp": ["2025-01-01", "2025-02-01"], "amount": [5.0, 7.0]} | change
    assert encode_posted(columns) is None


def test_two_lines_of_an_order_that_differ_only_in_time_are_not_a_repeat():
    columns = {"customer_id": ["a", "a"], "timestamp": ["2025-01-01T10:00:00", "2025-01-01T10:05:00"],
               "amount": [5.0, 5.0], "order_id": ["o1", "o1"]}
    pd.testing.assert_frame_equal(build_features(encode_posted(columns), as_of="2025-06-30"),
                                  batch_features(columns, "2025-06-30"), check_exact=True)
