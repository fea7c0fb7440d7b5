"""Touchpoints of the seed customers whose effect on churn is known: NPS and CSAT answers, support contacts,
complaints, e-mails, visits and unsubscribes.

The seed transactions (:func:`seeds.generate.make_seed_transactions`) are left as they are; the events are
drawn afterwards from what only the simulator knows, each customer's lapse: the day of the last purchase
before the BG/NBD dropout (none for a customer still active at the end). Around a lapse (:data:`TRUTH`):

- a quarterly NPS survey, answered by ``survey_response`` of the customers each time: an answer given within
  ``survey_memory_days`` before the lapse, or after it, is a detractor's 0–6 with
  probability ``p_detractor_lapsing`` (else ``p_detractor``): among customers who bought in the last 90
  days, a detractor's odds of buying nothing in the next 90 are over twice the others' (a complainer's too);
- support contacts, complaints and poor CSAT answers come faster in that window and the
  ``after_lapse_days`` after it, and stop then;
- the e-mail open rate falls linearly from ``open_rate`` to ``open_rate_lapsed`` over the same window, and
  some lapsed customers unsubscribe (no e-mail is sent after that);
- visits slow down after the lapse (window-shopping goes on).

Deterministic in ``seed``. ``python -m churnclv.seeds.events --out events.csv`` writes them for the seed log.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churnclv.seeds.generate import SEED_BGNBD, SEED_END, SEED_START, seed_lapses


@dataclass(frozen=True)
class EventTruth:
    """The generating rules (rates per day)."""

    lapse_window_days: float = 90.0
    after_lapse_days: float = 30.0
    survey_memory_days: float = 120.0
    survey_every_days: int = 91
    survey_response: float = 0.3
    p_detractor: float = 0.08
    p_detractor_lapsing: float = 0.85
    p_promoter: float = 0.5
    support_rate: float = 1 / 200
    support_rate_lapsing: float = 1 / 40
    complaint_rate: float = 1 / 900
    complaint_rate_lapsing: float = 1 / 80
    csat_response: float = 0.6
    email_every_days: int = 14
    open_rate: float = 0.4
    open_rate_lapsed: float = 0.05
    click_given_open: float = 0.25
    unsubscribe_after_lapse: float = 0.3
    visit_rate: float = 1 / 25
    visit_rate_lapsed: float = 1 / 60


TRUTH = EventTruth()


def _poisson_times(start: np.ndarray, stop: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of a Poisson process of ``rate`` per day on each customer's ``[start, stop)``."""
    span = np.maximum(stop - start, 0.0)
    counts = rng.poisson(span * rate)
    customer = np.repeat(np.arange(start.size), counts)
    return customer, start[customer] + rng.random(customer.size) * span[customer]


def _survey_answers(lapsing: np.ndarray, truth: EventTruth, rng: np.random.Generator) -> np.ndarray:
    """NPS answers 0–10: a detractor's 0–6, a passive's 7–8 or a promoter's 9–10."""
    p_det = np.where(lapsing, truth.p_detractor_lapsing, truth.p_detractor)
    p_pro = np.where(lapsing, (1 - p_det) * truth.p_promoter, truth.p_promoter)
    u = rng.random(lapsing.size)
    return np.where(u < p_det, rng.integers(0, 7, lapsing.size),
                    np.where(u < p_det + p_pro, rng.integers(9, 11, lapsing.size), rng.integers(7, 9, lapsing.size)))


def simulate_events(first: np.ndarray, lapse: np.ndarray, *, end: float, truth: EventTruth = TRUTH,
                    seed: int = 0) -> pd.DataFrame:
    """Events of customers ``0..n-1`` first seen on day ``first`` and lapsing on day ``lapse`` (inf: never),
    observed up to day ``end``: columns ``customer``, ``day`` (float), ``kind``, ``value``."""
    rngs = {kind: np.random.default_rng([seed, k]) for k, kind in enumerate(("support_contact", "complaint", "nps",
                                                                              "email", "visit"))}
    warn = lapse - truth.lapse_window_days  # the lapsing window starts here
    parts = []

    def add(customer, day, kind, value=np.nan):
        parts.append(pd.DataFrame({"customer": customer, "day": day, "kind": kind,
                                   "value": np.broadcast_to(np.asarray(value, dtype=float), customer.shape)}))

    # Support contacts and complaints: a calm rate, then a faster one from the lapsing window on, until a while after.
    for kind, calm, lapsing in (("support_contact", truth.support_rate, truth.support_rate_lapsing),
                                ("complaint", truth.complaint_rate, truth.complaint_rate_lapsing)):
        rng = rngs[kind]
        c1, d1 = _poisson_times(first, np.minimum(warn, end), calm, rng)
        c2, d2 = _poisson_times(np.maximum(first, warn), np.minimum(lapse + truth.after_lapse_days, end), lapsing, rng)
        customer, day = np.concatenate([c1, c2]), np.concatenate([d1, d2])
        add(customer, day, kind)
        if kind == "support_contact":  # a CSAT survey after some contacts: poorer in the lapsing window
            answered = rng.random(customer.size) < truth.csat_response
            near = day[answered] >= warn[customer[answered]]
            csat = np.where(near, rng.integers(1, 4, near.size), rng.integers(3, 6, near.size))
            add(customer[answered], day[answered] + rng.random(near.size), "csat", csat)
    # A relationship NPS survey every quarter, answered by some.
    rng = rngs["nps"]
    quarters = np.arange(0, end, truth.survey_every_days, dtype=float)
    customer, quarter = np.nonzero(quarters[None, :] >= first[:, None])
    answered = rng.random(customer.size) < truth.survey_response
    customer, day = customer[answered], quarters[quarter[answered]] + rng.random(answered.sum()) * 14
    add(customer, day, "nps", _survey_answers(day >= lapse[customer] - truth.survey_memory_days, truth, rng))
    # Unsubscribes after some lapses; e-mails every two weeks until then, opened less as the lapse nears.
    rng = rngs["email"]
    unsubscribes = np.where(rng.random(first.size) < truth.unsubscribe_after_lapse,
                            lapse + rng.exponential(60.0, first.size), np.inf)
    gone = np.flatnonzero(unsubscribes < end)
    add(gone, unsubscribes[gone], "unsubscribe")
    sends = np.arange(0, end, truth.email_every_days, dtype=float)
    customer, day = np.nonzero((sends[None, :] >= first[:, None]) & (sends[None, :] < unsubscribes[:, None]))
    day = sends[day] + 0.25
    add(customer, day, "email_sent")
    towards = np.clip((day - warn[customer]) / truth.lapse_window_days, 0.0, 1.0)
    p_open = truth.open_rate + (truth.open_rate_lapsed - truth.open_rate) * towards
    opened = rng.random(day.size) < p_open
    add(customer[opened], day[opened] + rng.random(opened.sum()) * 3, "email_open")
    clicked = opened & (rng.random(day.size) < truth.click_given_open)
    add(customer[clicked], day[clicked] + 3.5, "email_click")
    # Visits: fewer after the lapse.
    add(*_poisson_times(first, np.minimum(lapse, end), truth.visit_rate, rngs["visit"]), "visit")
    add(*_poisson_times(np.minimum(lapse, end), np.full(first.size, end), truth.visit_rate_lapsed, rngs["visit"]), "visit")
    events = pd.concat(parts, ignore_index=True)
    return events.loc[events["day"] < end].sort_values(["day", "customer"], kind="stable", ignore_index=True)


def make_seed_events(n_customers: int = 4000, *, seed: int = 7) -> pd.DataFrame:
    """The seed customers' events in the events contract (``customer_id, timestamp, kind, value``)."""
    lapses = seed_lapses(n_customers, seed=seed)
    end = float((SEED_END - SEED_START).days + 1)
    events = simulate_events(lapses["first_day"].to_numpy(), lapses["lapse_day"].to_numpy(), end=end, seed=seed)
    return pd.DataFrame({
        "customer_id": lapses["customer_id"].to_numpy()[events["customer"].to_numpy()],
        "timestamp": SEED_START + pd.to_timedelta(events["day"].to_numpy(), unit="D").floor("s"),
        "kind": events["kind"].to_numpy(),
        "value": events["value"].to_numpy(),
    })


def main(argv: list[str] | None = None) -> None:
    """``python -m churnclv.seeds.events --out events.csv [--customers 4000] [--seed 7]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    events = make_seed_events(args.customers, seed=args.seed)
    events.to_csv(args.out, index=False, lineterminator="\n", date_format="%Y-%m-%d %H:%M:%S")
    print(f"wrote {len(events):,} events to {args.out} (rules: {asdict(TRUTH)}; purchases: {asdict(SEED_BGNBD)})")


if __name__ == "__main__":
    main()
