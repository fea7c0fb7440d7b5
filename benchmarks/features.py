"""Benchmark: ``build_features`` (full feature set) against lifetimes' RFM summary alone, and with events.

Builds a seeded synthetic transaction log in memory (string customer ids, day-resolution
timestamps over ~2 years, amounts with ~2% returns) and a log of touchpoint events of the same
customers, then times, in the same process and on the same frames:

- ``features.build.build_features(tx, as_of=...)`` (RFM + behaviour + cohort features), first
  in the process: its first run is the first call in a fresh process;
- ``build_features(tx, as_of=..., events=...)`` (the same and the touchpoint features);
- ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")`` (RFM only).

Prints the times (wall and process CPU: the machine may be shared), the ratios lifetimes / ours
and with events / without, and peak memory. Defaults: 5,000,000 transactions, 500,000 customers,
5,000,000 events; ``--transactions/--customers/--events`` run smaller; ``--hashed-ids`` uses ids
that are hashed (varying width) instead of numbered ones.

    .venv/bin/python benchmarks/features.py [--transactions 500000 --customers 50000 --events 500000]
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
                           seed: int = 0, numbered: bool = True) -> pd.DataFrame:
    """Seeded canonical frame: every customer buys at least once; rows in time order.

    Purchase counts per customer are heavy-tailed (gamma weights), each customer's purchases
    fall uniformly between their first day and the end; ~2% of rows are returns. Ids are
    numbered ("C00000123"), or of varying width ("C123", ``numbered=False``; the same draws).
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
    labels = pd.array([f"C{i:08d}" if numbered else f"C{i}" for i in rng.permutation(n_customers)], dtype="str")
    return pd.DataFrame({
        "customer_id": labels.take(customer[order]),
        "timestamp": BASE_DATE + pd.to_timedelta(day[order], unit="D"),
        "amount": amount[order],
    })


#: Shares of the event kinds, about those of the seed events (:mod:`seeds.events`), and one kind of no feature.
EVENT_MIX = {"email_sent": 0.47, "visit": 0.24, "email_open": 0.145, "support_contact": 0.04,
             "email_click": 0.037, "csat": 0.023, "nps": 0.022, "complaint": 0.013, "unsubscribe": 0.002,
             "webinar": 0.008}


def synthetic_events(tx: pd.DataFrame, n_events: int, *, seed: int = 1, strangers: float = 0.005,
                     late: float = 0.01) -> pd.DataFrame:
    """Seeded canonical events of the customers of ``tx``: the nine kinds and another (:data:`EVENT_MIX`).

    Each event belongs to the customer of a random transaction (so busy customers have more) and falls
    within 90 days before it, at a random second; NPS answers 0-10 and CSAT 1-5 as ``value``. A share
    ``strangers`` belongs to ids of no transaction (ids of the same form, as a CRM's customers who never
    bought), a share ``late`` falls after the last transaction day (both read and left out by the
    features). Rows in time order, as a log is.
    """
    rng = np.random.default_rng(seed)
    row = rng.integers(0, len(tx), n_events)
    ids = tx["customer_id"].array.take(row)
    stranger = np.flatnonzero(rng.random(n_events) < strangers)
    ids[stranger] = pd.array([f"C{k:08d}" for k in rng.integers(10**7, 10**8, len(stranger))], dtype=ids.dtype)
    stamps = tx["timestamp"].to_numpy()[row] - (rng.integers(0, 90 * 86_400, n_events) * 10**9).astype("m8[ns]")
    after = np.flatnonzero(rng.random(n_events) < late)
    stamps[after] = tx["timestamp"].max().to_datetime64() + (rng.integers(86_400, 30 * 86_400, len(after))
                                                             * 10**9).astype("m8[ns]")
    kinds, shares = np.array(list(EVENT_MIX)), np.array(list(EVENT_MIX.values()))
    kind = rng.choice(len(kinds), n_events, p=shares / shares.sum())
    value = np.full(n_events, np.nan)
    for name, low, high in (("nps", 0, 10), ("csat", 1, 5)):
        answered = kind == list(EVENT_MIX).index(name)
        value[answered] = rng.integers(low, high + 1, int(answered.sum()))
    order = np.argsort(stamps, kind="stable")
    return pd.DataFrame({"customer_id": ids.take(order), "timestamp": stamps[order],
                         "kind": pd.array(kinds, dtype="str").take(kind[order]), "value": value[order]})


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
    parser.add_argument("--events", type=int, default=5_000_000, help="touchpoint events (0: none)")
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of build_features (lifetimes runs once)")
    parser.add_argument("--hashed-ids", action="store_true",
                        help='ids of varying width ("C123"), which are hashed, instead of numbered ones ("C00000123")')
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()

    _drop_script_dir_from_path()
    from churnclv.features.build import build_features

    t0 = time.perf_counter()
    tx = synthetic_transactions(args.transactions, args.customers, days=args.days, seed=args.seed,
                                numbered=not args.hashed_ids)
    as_of = tx["timestamp"].max()
    print(f"data: {len(tx):,} transactions, {tx['customer_id'].nunique():,} customers, "
          f"customer_id dtype {tx['customer_id'].dtype!r} ({type(tx['customer_id'].array).__name__}, "
          f"e.g. {tx['customer_id'].iloc[0]!r}), as_of {as_of.date()}, built in {time.perf_counter() - t0:.1f} s; "
          f"maxrss {maxrss_mb():,.0f} MB")

    times, cpus, features = timed(lambda: build_features(tx, as_of=as_of), args.repeat)
    rss_after_ours = maxrss_mb()
    ours = min(times)
    print(f"build_features, transactions alone (full feature set): {features.shape[0]:,} customers x "
          f"{features.shape[1]} columns; wall {', '.join(f'{t:.3f}' for t in times)} s -> best {ours:.3f} s; "
          f"CPU {', '.join(f'{t:.3f}' for t in cpus)} s")
    peak = traced_peak(lambda: build_features(tx, as_of=as_of))
    print(f"build_features peak traced allocations: {peak / 2**20:,.0f} MB "
          f"(input frame {tx.memory_usage(deep=True).sum() / 2**20:,.0f} MB); "
          f"process maxrss so far {rss_after_ours:,.0f} MB")
    if args.events:
        t0 = time.perf_counter()
        events = synthetic_events(tx, args.events, seed=args.seed + 1)
        late = int((events["timestamp"] >= as_of + pd.Timedelta(days=1)).sum())
        print(f"events: {len(events):,} of {events['kind'].nunique()} kinds, {late:,} after as_of, "
              f"built in {time.perf_counter() - t0:.1f} s")
        ev_times, ev_cpus, with_events = timed(lambda: build_features(tx, as_of=as_of, events=events), args.repeat)
        print(f"build_features with events: {with_events.shape[0]:,} customers x {with_events.shape[1]} columns; "
              f"wall {', '.join(f'{t:.3f}' for t in ev_times)} s -> best {min(ev_times):.3f} s; "
              f"CPU best {min(ev_cpus):.3f} s")
        print(f"ratio with events / transactions alone: {min(ev_times) / ours:.2f}x wall (best runs), "
              f"{min(ev_cpus) / min(cpus):.2f}x CPU (target: at most 2x)")
    if args.skip_lifetimes:
        return

    from lifetimes.utils import summary_data_from_transaction_data

    (ref_time,), (ref_cpu,), _ = timed(lambda: summary_data_from_transaction_data(
        tx, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=as_of, freq="D"), 1)
    print(f"lifetimes summary_data_from_transaction_data (RFM only, freq='D'): wall {ref_time:.3f} s; "
          f"CPU {ref_cpu:.3f} s; process maxrss {maxrss_mb():,.0f} MB")
    print(f"ratio lifetimes / build_features: {ref_time / ours:.1f}x wall (best run), "
          f"{ref_time / times[0]:.1f}x wall first run (the first call in the process); "
          f"{ref_cpu / min(cpus):.1f}x CPU (best run), {ref_cpu / cpus[0]:.1f}x CPU first run "
          f"(target: above 6.5x, toward 8x)")


if __name__ == "__main__":
    main()
