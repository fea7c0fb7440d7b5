"""Benchmark: recording a campaign and measuring its effect at scale (issue 19's bars, 2 cores).

- create: a campaign of 100,000 contacts from a 1,000,000-customer score table (ranked by value at
  risk, 1,000 suppressed customers, a 2% global holdout, 10% controls) in a fresh SQLite store:
  bar 5 s;
- effect: the campaign's effect from 6,300,000 generated transactions of those 1M customers (per
  segment and overall: Beta-Binomial retention intervals, 1,000 bootstrap resamples of spend):
  bar 30 s. Beside it, the reference way of getting the same per-member outcomes (merge the log
  with the members, then group by customer), timed in the same process on the same frames.

    .venv/bin/python benchmarks/campaigns.py [--customers 1000000 --contacts 100000 --transactions 6300000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # campaigns/ from the checkout

from churnclv.campaigns.create import CampaignRequest, create_campaign  # noqa: E402
from churnclv.campaigns.effect import measure_effect, member_outcomes  # noqa: E402
from churnclv.campaigns.migrate import open_store  # noqa: E402
from churnclv.campaigns.suppress import suppress  # noqa: E402

SEGMENTS = ("new", "lapsed", "high_value_at_risk", "at_risk", "loyal", "steady")
CAMPAIGN_DATE = dt.date(2025, 9, 1)


def score_table(n: int, *, seed: int = 0) -> pd.DataFrame:
    """A synthetic score table: ids "C0000001"…, segments, churn probability, CLV, value at risk."""
    rng = np.random.default_rng(seed)
    churn, clv = rng.random(n), np.round(rng.gamma(2.0, 100.0, size=n), 2)
    ids = pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(7).radd("C")
    return pd.DataFrame({"customer_id": ids, "segment": np.asarray(SEGMENTS)[rng.integers(0, len(SEGMENTS), n)],
                         "churn_probability": churn, "clv": clv, "value_at_risk": churn * clv})


def transactions(ids: pd.Series, n_rows: int, *, seed: int = 1) -> pd.DataFrame:
    """``n_rows`` rows over 2024-2025 for the customers ``ids`` (heavy-tailed counts, ~2% returns)."""
    rng = np.random.default_rng(seed)
    weights = rng.gamma(0.8, size=len(ids))
    owner = rng.choice(len(ids), size=n_rows, p=weights / weights.sum())
    seconds = rng.integers(0, 730 * 86_400, size=n_rows)
    amount = np.round(rng.gamma(6.0, 5.0, size=n_rows), 2) * np.where(rng.random(n_rows) < 0.02, -1, 1)
    return pd.DataFrame({"customer_id": ids.take(owner).reset_index(drop=True),
                         "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"),
                         "amount": amount})


def reference_outcomes(members: pd.DataFrame, log: pd.DataFrame, *, window_days: int) -> pd.DataFrame:
    """The plain way: merge the whole log with the members, cut the window, group by customer."""
    start = pd.Timestamp(CAMPAIGN_DATE) + pd.Timedelta(days=1)
    merged = log.merge(members[["customer_id"]], on="customer_id")
    window = merged.loc[(merged["timestamp"] >= start) & (merged["timestamp"] < start + pd.Timedelta(days=window_days))]
    per = window.assign(purchase=window["amount"] >= 0).groupby("customer_id").agg(
        retained=("purchase", "any"), spend=("amount", "sum"))
    return members[["customer_id"]].merge(per, on="customer_id", how="left").fillna({"retained": False, "spend": 0.0})


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<62} {seconds:7.2f} s")
    return result, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=6_300_000)
    args = parser.parse_args(argv)

    table, _ = timed(f"generate a score table of {args.customers:,} customers", lambda: score_table(args.customers))
    log, _ = timed(f"generate {args.transactions:,} transactions", lambda: transactions(table["customer_id"],
                                                                                       args.transactions))
    with tempfile.TemporaryDirectory() as home:
        engine = open_store(f"sqlite:///{home}/churnclv.db")
        suppress(engine, table["customer_id"].sample(1_000, random_state=0), reason="objected", source="bench",
                 who="bench")
        request = CampaignRequest("bench", control_share=0.1, holdout_share=0.02, parameters={"budget": args.contacts})

        def create():
            selected = table.nlargest(args.contacts, "value_at_risk")
            return create_campaign(engine, request, selected, requested_by="bench", campaign_date=CAMPAIGN_DATE)

        created, create_s = timed(f"create a campaign of {args.contacts:,} contacts (rank, filter, split, store)",
                                  create)
        print(f"  {created.campaign.n_treated:,} treated, {created.campaign.n_control:,} control, "
              f"{created.campaign.n_suppressed:,} suppressed, {created.campaign.n_held_out:,} held out")
        _, repeat_s = timed("the same request again (returns the stored campaign)", create)
        engine.dispose()
    members = created.members
    ours, ours_s = timed("per-member outcomes (campaigns.effect.member_outcomes)",
                         lambda: member_outcomes(members, log, campaign_date=CAMPAIGN_DATE, window_days=90))
    ref, ref_s = timed("per-member outcomes, reference (merge + groupby)",
                       lambda: reference_outcomes(members, log, window_days=90))
    assert (ours["retained"].to_numpy() == ref["retained"].to_numpy()).all()
    assert np.allclose(ours["spend"].to_numpy(), ref["spend"].to_numpy())
    effect, effect_s = timed(f"measure_effect from {len(log):,} transactions (all intervals)",
                             lambda: measure_effect(members, log, campaign_date=CAMPAIGN_DATE, window_days=90))
    overall = effect.table.iloc[-1]
    print(f"  overall retention difference {overall['retention_diff']:+.4f} "
          f"[{overall['retention_diff_low']:+.4f}, {overall['retention_diff_high']:+.4f}], finished={effect.finished}")
    print(f"create: {create_s:.2f} s (bar 5 s, {'ok' if create_s <= 5 else 'OVER'}); repeat {repeat_s:.2f} s; "
          f"effect: {effect_s:.2f} s (bar 30 s, {'ok' if effect_s <= 30 else 'OVER'}); "
          f"outcomes {ref_s / ours_s:.1f}x faster than the reference")


if __name__ == "__main__":
    main()
