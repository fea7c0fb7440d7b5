"""Benchmark: ``build_features`` (full feature set) against lifetimes' RFM summary alone.

Builds a seeded synthetic transaction log in memory (string customer ids, day-resolution
timestamps over ~2 years, amounts with ~2% returns), then times, in the same process and on
the same frame:

- ``features.build.build_features(tx, as_of=...)`` (RFM + behaviour + cohort features);
- ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")`` (RFM only).

Prints both times, their ratio and peak memory. Defaults: 5,000,000 transactions, 500,000
customers; ``--transactions/--customers`` run smaller.

    .venv/bin/python benchmarks/features.py [--transactions 500000 --customers 50000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

BASE_DATE = pd.Timestamp("2023-01-01")


def synthetic_transactions(n_transactions: int, n_customers: int, *, days: int = 730,
                           seed: int = 0) -> pd.DataFrame:
    """Seeded canonical frame: every customer buys at least once; rows in time order.

    Purchase counts per customer are heavy-tailed (gamma weights), each customer's purchases
    fall uniformly between their first day and the end; ~2% of rows are returns.
    """
    if n_transactions < n_customers:
        raise ValueError("need at least one transaction per customer")
    rng = np.random.default_rng(seed)
    weights = rng.gamma(0.5, 1.0, n_customers)
    extra = rng.choice(n_customers, n_transactions - n_customers, p=weights / weights.sum())
    customer = np.concatenate([np.arange(n_customers), extra])
    start = rng.integers(0, days, n_customers)
    offset = np.floor(rng.random(n_transactions) * (days - start[customer])).astype(np.int64)
    offset[:n_customers] = 0
    day = start[customer] + offset
    amount = np.round(rng.lognormal(3.2, 0.7, n_transactions), 2)
    amount[rng.random(n_transactions) < 0.02] *= -1.0
    order = np.argsort(day, kind="stable")
    labels = pd.array([f"C{i:08d}" for i in rng.permutation(n_customers)], dtype="str")
    return pd.DataFrame({
        "customer_id": labels.take(customer[order]),
        "timestamp": BASE_DATE + pd.to_timedelta(day[order], unit="D"),
        "amount": amount[order],
    })


def timed(fn: Callable[[], object], repeat: int) -> tuple[list[float], list[float], object]:
    """Wall and process-CPU times of ``repeat`` calls, and the last result.

    CPU time is printed too because this machine is shared: under load, wall time swings.
    """
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, result


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (Python + numpy, via tracemalloc) during one call."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _drop_script_dir_from_path() -> None:
    """This script is itself named ``features``: keep its folder from shadowing the package."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5_000_000)
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of build_features (lifetimes runs once)")
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()

    _drop_script_dir_from_path()
    from churnclv.features.build import build_features

    t0 = time.perf_counter()
    tx = synthetic_transactions(args.transactions, args.customers, days=args.days, seed=args.seed)
    as_of = tx["timestamp"].max()
    print(f"data: {len(tx):,} transactions, {tx['customer_id'].nunique():,} customers, "
          f"customer_id dtype {tx['customer_id'].dtype!r} ({type(tx['customer_id'].array).__name__}), "
          f"as_of {as_of.date()}, built in {time.perf_counter() - t0:.1f} s; maxrss {maxrss_mb():,.0f} MB")

    times, cpus, features = timed(lambda: build_features(tx, as_of=as_of), args.repeat)
    rss_after_ours = maxrss_mb()
    ours = min(times)
    print(f"build_features (full feature set): {features.shape[0]:,} customers x {features.shape[1]} columns; "
          f"wall {', '.join(f'{t:.3f}' for t in times)} s -> best {ours:.3f} s; "
          f"CPU best {min(cpus):.3f} s")
    peak = traced_peak(lambda: build_features(tx, as_of=as_of))
    print(f"build_features peak traced allocations: {peak / 2**20:,.0f} MB "
          f"(input frame {tx.memory_usage(deep=True).sum() / 2**20:,.0f} MB); "
          f"process maxrss so far {rss_after_ours:,.0f} MB")
    if args.skip_lifetimes:
        return

    from lifetimes.utils import summary_data_from_transaction_data

    (ref_time,), (ref_cpu,), _ = timed(lambda: summary_data_from_transaction_data(
        tx, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=as_of, freq="D"), 1)
    print(f"lifetimes summary_data_from_transaction_data (RFM only, freq='D'): wall {ref_time:.3f} s; "
          f"CPU {ref_cpu:.3f} s; process maxrss {maxrss_mb():,.0f} MB")
    print(f"ratio lifetimes / build_features: {ref_time / ours:.1f}x wall (best run), "
          f"{ref_time / times[0]:.1f}x (first run), {ref_cpu / min(cpus):.1f}x CPU")


if __name__ == "__main__":
    main()
