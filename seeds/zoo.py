"""A zoo of generated transaction logs of many real-world shapes, each with its known truth.

Every shape is a function ``make_<name>(*, seed=0, n_customers=...) -> Shape``: a canonical
transaction log (the columns of :mod:`seeds.generate`) that runs past every as-of date by at least
``horizon_days``, so that a model trained at an as-of date can be judged on the real future. The
purchase processes reuse :mod:`seeds.generate` (BG/NBD simulation, Gamma-Gamma spend, returns, the
canonical frame); a shape changes only what makes it special (one-time buyers, no dropout, a Q4
peak, campaigns, regular wholesale orders, grocery frequency, many returns). A shape may carry the
customers' touchpoints too (``Shape.events``, :mod:`seeds.events`), future included: the subscription
shape, where they announce a lapse that the purchases do not.

Time is measured in days after the shape's first calendar day throughout; an as-of date names a
whole calendar day, and its horizon is the days ``(as_of, as_of + horizon_days]`` (as in
``features.make_labels``). Each shape is deterministic in ``seed`` (one numpy Generator).

Command line: ``python -m churnclv.seeds.zoo --list`` and ``python -m churnclv.seeds.zoo NAME --out file.csv [--seed N]``
(``--events-out events.csv`` for a shape with touchpoints).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from churnclv.contract import write_table
from churnclv.contract.defaults import HORIZON_DAYS
from churnclv.seeds.events import EventTruth, simulate_events
from churnclv.seeds.generate import (
    SEED_BGNBD,
    SEED_SPEND,
    BGNBDParams,
    GammaGammaParams,
    _canonical,
    _codes,
    _repeat_purchases,
    _returns,
    draw_spend,
    simulate_bgnbd,
    write_transactions_csv,
)

__all__ = [
    "DESCRIPTIONS",
    "HORIZON_DAYS",
    "SHAPES",
    "Shape",
    "main",
    "make_all_drop",
    "make_bursts",
    "make_donations",
    "make_events",
    "make_grocery",
    "make_no_dropout",
    "make_one_time",
    "make_retail_q4",
    "make_returns",
    "make_seasonal_q4",
    "make_subscription",
    "make_wholesale",
    "make_young",
]


NEVER = np.iinfo(np.int64).max // 2  # "repeat purchases until dropout" of a customer who never drops out

DESCRIPTIONS = {
    "one_time": "online gift shop: ~90% of customers buy once and never again; a few BG/NBD repeat buyers",
    "no_dropout": "staples bought by habit: pure NBD, nobody ever drops out (Poisson rates ~ Gamma, p = 0)",
    "all_drop": "fad product: BG/NBD, mean dropout 0.75 after each repeat purchase; almost all leave fast",
    "seasonal_q4": "gift retailer: buying and acquisition 3x higher in Oct-Dec, BG/NBD dropout, 3 years",
    "young": "a shop that opened seven months before the as-of date: BG/NBD, under a year of history",
    "events": "charity: gifts cluster in the two weeks after a spring and a December appeal; ~60% give once",
    "wholesale": "B2B supplier: few accounts, orders in the thousands, regular gamma gaps, little dropout",
    "grocery": "supermarket loyalty cards: several trips a week, several transactions a day, churny",
    "returns": "fashion e-commerce: BG/NBD purchases and a full or partial return after ~25% of orders",
    "donations": "charity: giving in two one-week events a year (January, July); about 60% give once; quiet between",
    "retail_q4": "retailer over six years: November and December 2-3x the January lull; BG/NBD dropout",
    "subscription": "monthly box on a steady rhythm until a lapse that e-mails, complaints and NPS announce",
    "bursts": "home improvement: each purchase occasion brings more orders within a week (mean 2.2); BG/NBD between",
}


@dataclass(frozen=True, eq=False)
class Shape:
    """A generated transaction log of one real-world shape, with the dates to train and judge at.

    Attributes
    ----------
    name, description : registry key and one line on the business it imitates and what is special.
    transactions : canonical frame (customer_id, timestamp, amount, order_id, quantity, channel,
        category), sorted by timestamp; it covers the history and the future after every as-of date.
    as_ofs : the as-of dates (whole calendar days) a model is trained at.
    horizon_days : the model is judged on the days ``(as_of, as_of + horizon_days]``.
    truth : the generating parameters and simulator facts (JSON-serialisable).
    events : the customers' touchpoints in the events contract (customer_id, timestamp, kind, value), sorted
        by timestamp, the future after every as-of date included; None for a shape of purchases only.
    """

    name: str
    description: str
    transactions: pd.DataFrame
    as_ofs: tuple[pd.Timestamp, ...]
    horizon_days: int
    truth: dict
    events: pd.DataFrame | None = None


@dataclass(frozen=True)
class _Style:
    """How a shape's orders look.

    ``spend``: Gamma-Gamma order values, rounded to multiples of ``step`` (at least one step);
    ``quantity = 1 + Poisson(amount / unit_price)``; each customer has a favourite channel (80% of
    orders) and category (60%); an order is returned 2-14 days later with probability ``return_rate``,
    per customer ~ Beta with mean ``return_rate`` and concentration ``return_concentration`` when set.
    """

    spend: GammaGammaParams
    channels: tuple[str, ...]
    categories: tuple[str, ...]
    return_rate: float = 0.02
    return_concentration: float | None = None
    unit_price: float = 20.0
    step: float = 0.01


RETAIL = _Style(SEED_SPEND, ("web", "app", "store"), ("home", "fashion", "electronics", "beauty", "toys"))


# --------------------------------------------------------------------------------------------------
# Calendar and purchase frames
# --------------------------------------------------------------------------------------------------


def _calendar(
    start: str, as_ofs: tuple[str, ...], horizon_days: int, *, tail_days: int = 0
) -> tuple[pd.Timestamp, tuple[pd.Timestamp, ...], float]:
    """First calendar day, the as-of dates, and the end of the log in days after ``start``.

    The end is exclusive: the day after the last label day ``max(as_ofs) + horizon_days``, plus
    ``tail_days`` for a sparse log whose last label day might otherwise hold no transaction.
    """
    first = pd.Timestamp(start)
    dates = tuple(pd.Timestamp(d) for d in as_ofs)
    return first, dates, float((max(dates) - first).days + horizon_days + tail_days + 1)


def _from_bgnbd(purchases: pd.DataFrame, customers: np.ndarray | None = None) -> pd.DataFrame:
    """``simulate_bgnbd`` output as (customer, day, alive_after); ``customers`` re-indexes customers."""
    customer = purchases["customer"].to_numpy()
    return pd.DataFrame(
        {
            "customer": customer if customers is None else customers[customer],
            "day": purchases["day"].to_numpy(),
            "alive_after": purchases["to_dropout"].to_numpy() > 0,
        }
    )


def _purchase_frame(
    first_day: np.ndarray, blocks: list[tuple[np.ndarray, np.ndarray, int]], j_drop: np.ndarray
) -> pd.DataFrame:
    """First purchases plus repeat blocks (customer, day, number) as (customer, day, alive_after).

    ``alive_after`` is False on the purchase after which the customer becomes inactive (repeat
    purchase number ``j_drop``); rows are sorted by (customer, day).
    """
    blocks = [(np.arange(first_day.size), first_day, 0), *blocks]
    customer = np.concatenate([c for c, _, _ in blocks])
    number = np.concatenate([np.full(c.size, k, dtype=np.int64) for c, _, k in blocks])
    frame = pd.DataFrame(
        {
            "customer": customer.astype(np.int64),
            "day": np.concatenate([d for _, d, _ in blocks]),
            "alive_after": j_drop[customer] > number,
        }
    )
    return frame.sort_values(["customer", "day"], kind="stable", ignore_index=True)


def _alive_at(purchases: pd.DataFrame, *, as_ofs: tuple[pd.Timestamp, ...], start: pd.Timestamp) -> dict:
    """Simulator truth per as-of date: customers seen by then and the share of them still alive."""
    out = {}
    ordered = purchases.sort_values(["customer", "day"], kind="stable")
    for as_of in as_ofs:
        seen = ordered.loc[ordered["day"] < (as_of - start).days + 1]
        last = seen.groupby("customer")["alive_after"].last()
        out[as_of.date().isoformat()] = {
            "customers": int(last.size),
            "alive_share": round(float(last.mean()), 4),
        }
    return out


def _bgnbd_truth(params: BGNBDParams) -> dict:
    """BG/NBD parameters with alpha per day and per week, and the mean dropout a / (a + b)."""
    return {
        "r": params.r,
        "alpha_per_day": params.alpha,
        "alpha_per_week": params.alpha / 7,
        "a": params.a,
        "b": params.b,
        "mean_dropout": params.a / (params.a + params.b),
    }


# --------------------------------------------------------------------------------------------------
# Orders, returns and the Shape
# --------------------------------------------------------------------------------------------------


def _favourite(
    customer: np.ndarray,
    labels: tuple[str, ...],
    *,
    n_customers: int,
    loyalty: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One label per order: the customer's favourite with probability ``loyalty``, else uniform."""
    favourite = rng.integers(len(labels), size=n_customers)
    any_label = rng.integers(len(labels), size=customer.size)
    pick = np.where(rng.random(customer.size) < loyalty, favourite[customer], any_label)
    return np.asarray(labels)[pick]


def _return_rates(n_customers: int, style: _Style, rng: np.random.Generator) -> np.ndarray:
    """Per-customer probability that an order is returned (constant unless a concentration is set)."""
    if style.return_concentration is None:
        return np.full(n_customers, style.return_rate)
    c, m = style.return_concentration, style.return_rate
    return rng.beta(m * c, (1.0 - m) * c, size=n_customers)


def _orders(
    purchases: pd.DataFrame, *, n_customers: int, style: _Style, rng: np.random.Generator
) -> pd.DataFrame:
    """Orders (amount, quantity, channel, category, return_rate, order_id) from purchase days.

    A ``category`` column in ``purchases`` is kept (e.g. the campaign of a gift); order ids
    "O0000001"… follow the day order.
    """
    customer = purchases["customer"].to_numpy()
    spend = draw_spend(customer, n_customers=n_customers, **asdict(style.spend), rng=rng)
    amount = np.round(np.maximum(np.round(spend / style.step), 1.0) * style.step, 2)
    if "category" in purchases:
        category = purchases["category"].to_numpy()
    else:
        category = _favourite(customer, style.categories, n_customers=n_customers, loyalty=0.6, rng=rng)
    orders = pd.DataFrame(
        {
            "customer": customer,
            "day": purchases["day"].to_numpy(),
            "amount": amount,
            "quantity": 1.0 + rng.poisson(amount / style.unit_price),
            "channel": _favourite(customer, style.channels, n_customers=n_customers, loyalty=0.8, rng=rng),
            "category": category,
            "return_rate": _return_rates(n_customers, style, rng)[customer],
        }
    ).sort_values("day", kind="stable")
    return orders.assign(order_id=_codes("O", np.arange(1, len(orders) + 1), width=7).to_numpy())


def _shape(
    name: str,
    purchases: pd.DataFrame,
    *,
    n_customers: int,
    seed: int,
    start: pd.Timestamp,
    as_ofs: tuple[pd.Timestamp, ...],
    end: float,
    style: _Style,
    truth: dict,
    rng: np.random.Generator,
) -> Shape:
    """Orders, returns and the canonical frame from purchases (customer, day, alive_after[, category])."""
    orders = _orders(purchases, n_customers=n_customers, style=style, rng=rng)
    returns = _returns(orders, end=end, rng=rng)
    rows = pd.concat([orders, returns], ignore_index=True) if len(returns) else orders
    common = {
        "shape": name,
        "generator": f"churnclv.seeds.zoo.make_{name}",
        "seed": seed,
        "n_customers": n_customers,
        "start": start.date().isoformat(),
        "end": (start + pd.Timedelta(days=end - 1)).date().isoformat(),
        "end_note": "end is the last calendar day of the log (inclusive): max(as_ofs) + horizon_days, "
        "or a few days later for a sparse log",
        "as_ofs": [d.date().isoformat() for d in as_ofs],
        "horizon_days": HORIZON_DAYS,
        "at_as_of": _alive_at(purchases, as_ofs=as_ofs, start=start),
        "gamma_gamma": {**asdict(style.spend), "mean_order_value": _mean_order_value(style.spend)},
        "amount_step": style.step,
        "return_rate": style.return_rate,
    }
    return Shape(
        name=name,
        description=DESCRIPTIONS[name],
        transactions=_canonical(rows, n_customers=n_customers, start=start),
        as_ofs=as_ofs,
        horizon_days=HORIZON_DAYS,
        truth={**common, **truth},
    )


def _mean_order_value(spend: GammaGammaParams) -> float:
    """Gamma-Gamma mean order value p·gamma / (q - 1), before rounding."""
    return spend.p * spend.gamma / (spend.q - 1)


# --------------------------------------------------------------------------------------------------
# BG/NBD variants: one_time, no_dropout, all_drop, young, returns, grocery, bursts
# --------------------------------------------------------------------------------------------------

ONE_TIME_SHARE = 0.9
ONE_TIME_BGNBD = BGNBDParams(r=0.9, alpha=60.0, a=0.6, b=4.0)
NO_DROPOUT_NBD = {"r": 1.2, "alpha": 80.0}
ALL_DROP_BGNBD = BGNBDParams(r=2.0, alpha=60.0, a=3.0, b=1.0)
GROCERY_BGNBD = BGNBDParams(r=2.0, alpha=7.0, a=3.0, b=90.0)
GROCERY_SPEND = GammaGammaParams(p=5.0, q=5.0, gamma=36.0)
RETURNS_RATE = 0.25


def make_one_time(*, seed: int = 0, n_customers: int = 4000) -> Shape:
    """Mostly one-time buyers, 2024-2025 (2 years of history), as of 2025-12-31.

    A share ``ONE_TIME_SHARE`` of customers buy once and never again (inactive right after the first
    purchase, which BG/NBD cannot express); the rest follow BG/NBD (``ONE_TIME_BGNBD``, alpha per
    day). First purchases are uniform over the whole log, the horizon included.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    start, as_ofs, end = _calendar("2024-01-01", ("2025-12-31",), HORIZON_DAYS)
    once = rng.random(n_customers) < ONE_TIME_SHARE
    once_ids, repeat_ids = np.flatnonzero(once), np.flatnonzero(~once)
    single = pd.DataFrame(
        {"customer": once_ids, "day": rng.uniform(0.0, end, size=once_ids.size), "alive_after": False}
    )
    repeat = simulate_bgnbd(repeat_ids.size, **asdict(ONE_TIME_BGNBD), start=0.0, end=end, rng=rng)
    purchases = pd.concat([single, _from_bgnbd(repeat, repeat_ids)], ignore_index=True)
    purchases = purchases.sort_values(["customer", "day"], kind="stable", ignore_index=True)
    truth = {
        "model": "mixture: one-and-done customers (inactive after the first purchase) + BG/NBD",
        "share_one_and_done": ONE_TIME_SHARE,
        "one_and_done_customers": int(once.sum()),
        "bgnbd_rest": _bgnbd_truth(ONE_TIME_BGNBD),
    }
    return _shape(
        "one_time", purchases, n_customers=n_customers, seed=seed, start=start, as_ofs=as_ofs, end=end,
        style=RETAIL, truth=truth, rng=rng,
    )  # fmt: skip


def make_no_dropout(*, seed: int = 0, n_customers: int = 2500) -> Shape:
    """Pure NBD (nobody drops out), 2024-2025, as of 2025-12-31.

    Purchase rate ``lambda ~ Gamma(r, rate alpha)`` per day (``NO_DROPOUT_NBD``), dropout p = 0;
    first purchases uniform over the whole log.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    start, as_ofs, end = _calendar("2024-01-01", ("2025-12-31",), HORIZON_DAYS)
    r, alpha = NO_DROPOUT_NBD["r"], NO_DROPOUT_NBD["alpha"]
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n_customers)
    first_day = rng.uniform(0.0, end, size=n_customers)
    j_drop = np.full(n_customers, NEVER)
    blocks = _repeat_purchases(first_day, lam, j_drop, end=end, rng=rng)
    truth = {
        "model": "NBD: Poisson purchases with Gamma rates, no dropout (BG/NBD with p = 0)",
        "nbd": {"r": r, "alpha_per_day": alpha, "alpha_per_week": alpha / 7, "p": 0.0},
        "mean_purchases_per_year": 365 * r / alpha,
    }
    return _shape(
        "no_dropout", _purchase_frame(first_day, blocks, j_drop), n_customers=n_customers, seed=seed,
        start=start, as_ofs=as_ofs, end=end, style=RETAIL, truth=truth, rng=rng,
    )  # fmt: skip


def _bgnbd_shape(
    name: str,
    params: BGNBDParams,
    *,
    seed: int,
    n_customers: int,
    start: str,
    as_ofs: tuple[str, ...],
    style: _Style,
    truth: dict,
) -> Shape:
    """A BG/NBD shape: first purchases uniform over the whole log (the horizon included)."""
    rng = np.random.default_rng(seed)
    first, dates, end = _calendar(start, as_ofs, HORIZON_DAYS)
    purchases = simulate_bgnbd(n_customers, **asdict(params), start=0.0, end=end, rng=rng)
    truth = {"model": "BG/NBD", "bgnbd": _bgnbd_truth(params), **truth}
    return _shape(
        name, _from_bgnbd(purchases), n_customers=n_customers, seed=seed, start=first, as_ofs=dates,
        end=end, style=style, truth=truth, rng=rng,
    )  # fmt: skip


def make_all_drop(*, seed: int = 0, n_customers: int = 4000) -> Shape:
    """Almost everyone drops out quickly: BG/NBD with p ~ Beta(3, 1) (mean 0.75), 2024-2025.

    Purchase rate ~ Gamma(2, rate 60) per day (a repeat about a month after the first purchase);
    as of 2025-12-31.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    return _bgnbd_shape(
        "all_drop", ALL_DROP_BGNBD, seed=seed, n_customers=n_customers, start="2024-01-01",
        as_ofs=("2025-12-31",), style=RETAIL, truth={},
    )  # fmt: skip


def make_young(*, seed: int = 0, n_customers: int = 3000) -> Shape:
    """A young business: BG/NBD (the seed sample's parameters) from 2025-06-01, as of 2025-12-31.

    Seven months (213 days) of history before the as-of date, so no customer has a full year.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    return _bgnbd_shape(
        "young", SEED_BGNBD, seed=seed, n_customers=n_customers, start="2025-06-01",
        as_ofs=("2025-12-31",), style=RETAIL, truth={},
    )  # fmt: skip


def make_returns(*, seed: int = 0, n_customers: int = 3000) -> Shape:
    """Many returns: BG/NBD purchases (seed parameters), 2024-2025, as of 2025-12-31.

    Each customer returns an order (fully or 20-80% partially, 2-14 days later) with probability
    ~ Beta(mean 0.25, concentration 8): about a quarter of orders, with serial returners.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    style = _Style(
        SEED_SPEND, ("web", "app"), ("dresses", "shoes", "tops", "trousers", "accessories"),
        return_rate=RETURNS_RATE, return_concentration=8.0,
    )  # fmt: skip
    truth = {"return_model": "per-customer return probability ~ Beta(0.25 * 8, 0.75 * 8); half full"}
    return _bgnbd_shape(
        "returns", SEED_BGNBD, seed=seed, n_customers=n_customers, start="2024-01-01",
        as_ofs=("2025-12-31",), style=style, truth=truth,
    )  # fmt: skip


def make_grocery(*, seed: int = 0, n_customers: int = 1500) -> Shape:
    """Frequent buying: BG/NBD with a mean rate of 2 trips a week, 2024-07-01 to as of 2025-12-31.

    ``lambda ~ Gamma(2, rate 7)`` per day, so many customers shop several times a week and some
    twice a day (transactions that collapse into one purchase day); ``p ~ Beta(3, 90)`` after each
    trip: E[1/p] = 46 trips before leaving. Baskets average 45, rounded to cents.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    style = _Style(
        GROCERY_SPEND, ("store", "app"), ("fresh", "pantry", "household", "drinks"),
        return_rate=0.01, unit_price=4.0,
    )  # fmt: skip
    truth = {"mean_trips_per_week": 7 * GROCERY_BGNBD.r / GROCERY_BGNBD.alpha}
    return _bgnbd_shape(
        "grocery", GROCERY_BGNBD, seed=seed, n_customers=n_customers, start="2024-07-01",
        as_ofs=("2025-12-31",), style=style, truth=truth,
    )  # fmt: skip


BURSTS_BGNBD = BGNBDParams(r=0.4, alpha=60.0, a=0.6, b=4.0)
#: After each BG/NBD purchase occasion, Geometric(BURST_P) - 1 more purchases (mean 1.2), each BURST_DAYS later.
BURST_P = 0.45
BURST_DAYS = (0.5, 7.0)


def make_bursts(*, seed: int = 0, n_customers: int = 4000) -> Shape:
    """Buying in bursts: BG/NBD purchase occasions, each followed by more purchases within a week, 2023-01-01 to
    2025-09-30 + 90 days, as of 2025-03-31, 2025-06-30 and 2025-09-30.

    The occasions are BG/NBD (``lambda ~ Gamma(0.4, rate 60)`` per day, ``p ~ Beta(0.6, 4)`` after each); each
    brings Geometric(0.45) - 1 more purchases (mean 1.2), each 0.5 to 7 days after it, uniformly. A project, a
    trip or a refit: beyond BG/NBD's assumptions of one purchase at a time at a steady rate.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    first, dates, end = _calendar("2023-01-01", ("2025-03-31", "2025-06-30", "2025-09-30"), HORIZON_DAYS)
    occasions = _from_bgnbd(simulate_bgnbd(n_customers, **asdict(BURSTS_BGNBD), start=0.0, end=end, rng=rng))
    more = rng.geometric(BURST_P, len(occasions)) - 1
    burst = occasions.loc[np.repeat(occasions.index, more)]  # each later purchase alive or not as its occasion
    burst = burst.assign(day=burst["day"].to_numpy() + rng.uniform(*BURST_DAYS, int(more.sum())))
    purchases = pd.concat([occasions, burst.loc[burst["day"] < end]], ignore_index=True)
    truth = {"model": "BG/NBD occasions, each a burst of purchases", "bgnbd": _bgnbd_truth(BURSTS_BGNBD),
             "burst": {"more_purchases": f"Geometric({BURST_P}) - 1", "mean_more": (1 - BURST_P) / BURST_P,
                       "days_after": list(BURST_DAYS)}}
    return _shape(
        "bursts", purchases.sort_values(["customer", "day"], kind="stable", ignore_index=True),
        n_customers=n_customers, seed=seed, start=first, as_ofs=dates, end=end, style=RETAIL, truth=truth, rng=rng,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# seasonal_q4: BG/NBD on a seasonal clock
# --------------------------------------------------------------------------------------------------

SEASONAL_BGNBD = BGNBDParams(r=1.0, alpha=50.0, a=0.8, b=5.0)
Q4_MONTHS = (10, 11, 12)
Q4_RATIO = 3.0
Q4_DAY_SHARE = 92 / 365


def _season(start: pd.Timestamp, n_days: int, *, ratio: float = Q4_RATIO) -> np.ndarray:
    """s(day) per calendar day: ``ratio`` times higher in Oct-Dec, yearly mean 1 (92 of 365 days)."""
    months = (start + pd.to_timedelta(np.arange(n_days), unit="D")).month
    low = 1.0 / (ratio * Q4_DAY_SHARE + (1.0 - Q4_DAY_SHARE))
    return np.where(np.isin(months, Q4_MONTHS), ratio * low, low)


def _to_calendar(operational: np.ndarray, season: np.ndarray) -> np.ndarray:
    """Calendar days t from operational times S(t) = integral of s over [0, t) (piecewise linear)."""
    clock = np.concatenate([[0.0], np.cumsum(season)])
    return np.interp(operational, clock, np.arange(clock.size, dtype=np.float64))


def make_seasonal_q4(*, seed: int = 0, n_customers: int = 3000) -> Shape:
    """A Q4 peak: BG/NBD whose purchase intensity is lambda_i × s(t), 2023-01-01 to 2026-03-31.

    The nonhomogeneous Poisson process is simulated by a time change: BG/NBD runs on the operational
    clock S(t) = ∫ s (days), and purchase times are mapped back with S⁻¹. First purchases, uniform
    on the operational clock, are also 3× more frequent in Oct-Dec. Dropout is BG/NBD's, after each
    repeat purchase. As of 2025-09-30 (the peak ahead) and 2025-12-31 (the quiet quarter ahead).

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    start, as_ofs, end = _calendar("2023-01-01", ("2025-09-30", "2025-12-31"), HORIZON_DAYS)
    season = _season(start, int(end))
    op_end = float(season.sum())
    purchases = simulate_bgnbd(n_customers, **asdict(SEASONAL_BGNBD), start=0.0, end=op_end, rng=rng)
    purchases = purchases.assign(day=_to_calendar(purchases["day"].to_numpy(), season))
    truth = {
        "model": "BG/NBD on the operational clock S(t); intensity lambda_i * s(t) in calendar days",
        "bgnbd": _bgnbd_truth(SEASONAL_BGNBD),
        "season": {
            "months": list(Q4_MONTHS),
            "ratio": Q4_RATIO,
            "s_peak": float(season.max()),
            "s_rest": float(season.min()),
            "note": "s is the same for acquisition (first purchases uniform on the operational clock)",
        },
    }
    return _shape(
        "seasonal_q4", _from_bgnbd(purchases), n_customers=n_customers, seed=seed, start=start,
        as_ofs=as_ofs, end=end, style=RETAIL, truth=truth, rng=rng,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# events: gifts around two appeals a year
# --------------------------------------------------------------------------------------------------

EVENT_DATES = {"spring": "04-20", "december": "12-01"}  # appeal launch days (month-day)
EVENT_WEIGHTS = {"spring": 1.0, "december": 2.0}  # relative donor acquisition per appeal
EVENTS = {
    "acquired_at_event": 0.8,  # share of donors whose first gift answers an appeal (else any day)
    "one_time": 0.5,  # share of donors who never give again
    "give_ab": (3.0, 2.0),  # repeat donor answers each later appeal with probability ~ Beta
    "drop_ab": (1.0, 4.0),  # and becomes inactive after each such gift with probability ~ Beta
    "lag_shape": 1.5,  # gift lag after an appeal ~ Gamma(1.5, scale 3) days (mean 4.5, 2% > 14)
    "lag_scale": 3.0,
    "off_event_per_year": 0.3,  # mean rate of spontaneous gifts of an active repeat donor
}
#: Off-appeal gifts run at ~1.3 a day: a log cut at the last label day could end on a quiet day, so this
#: one runs 14 days longer (P(no gift in them) ≈ e^-18) and its last timestamp is past the horizon.
EVENTS_TAIL_DAYS = 14
DONATIONS = _Style(
    GammaGammaParams(p=2.0, q=3.0, gamma=50.0), ("web", "mail"), tuple(EVENT_DATES) + ("general",),
    return_rate=0.0, unit_price=np.inf, step=5.0,
)  # fmt: skip


def _event_days(start: pd.Timestamp, end: float, dates: dict[str, str] = EVENT_DATES) -> tuple[np.ndarray, np.ndarray]:
    """Appeal days (days after ``start``, sorted, inside ``[0, end)``) and their names; ``dates`` maps a
    name to its month-day."""
    years = range(start.year, (start + pd.Timedelta(days=end)).year + 1)
    pairs = [
        ((pd.Timestamp(f"{y}-{md}") - start).days, name) for y in years for name, md in dates.items()
    ]
    pairs = sorted(p for p in pairs if 0 <= p[0] < end)
    return np.array([d for d, _ in pairs], dtype=np.float64), np.array([n for _, n in pairs])


def _first_gifts(
    n: int, days: np.ndarray, names: np.ndarray, *, end: float, rng: np.random.Generator,
    process: dict = EVENTS, weights: dict[str, float] = EVENT_WEIGHTS,
) -> tuple[np.ndarray, np.ndarray]:
    """First gift day and campaign per donor: after an appeal (weighted) or on any day ("general")."""
    weights = np.array([weights[name] for name in names])
    which = rng.choice(days.size, size=n, p=weights / weights.sum())
    lag = rng.gamma(process["lag_shape"], process["lag_scale"], size=n)
    at_event = rng.random(n) < process["acquired_at_event"]
    day = np.minimum(
        np.where(at_event, days[which] + lag, rng.uniform(0.0, end, size=n)), np.nextafter(end, 0)
    )
    return day, np.where(at_event, names[which], "general")


def _spontaneous(
    eligible: np.ndarray, rate: np.ndarray, lo: np.ndarray, hi: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Off-appeal gifts: Poisson(rate per day) on ``[lo_i, hi)`` for the eligible donors."""
    length = np.where(eligible, np.maximum(hi - lo, 0.0), 0.0)
    count = rng.poisson(rate * length)
    donor = np.repeat(np.arange(count.size), count)
    day = lo[donor] + rng.random(donor.size) * length[donor]
    return pd.DataFrame({"customer": donor, "day": day, "alive_after": True, "category": "general"})


def _simulate_gifts(
    n: int, days: np.ndarray, names: np.ndarray, *, end: float, rng: np.random.Generator,
    process: dict = EVENTS, weights: dict[str, float] = EVENT_WEIGHTS,
) -> pd.DataFrame:
    """Gifts (customer, day, alive_after, category) of ``n`` donors; one loop step per appeal.
    ``process`` holds the parameters named like :data:`EVENTS`; ``weights`` the acquisition per appeal."""
    first, campaign = _first_gifts(n, days, names, end=end, rng=rng, process=process, weights=weights)
    alive = rng.random(n) >= process["one_time"]
    give, drop = rng.beta(*process["give_ab"], size=n), rng.beta(*process["drop_ab"], size=n)
    rate = rng.gamma(1.0, process["off_event_per_year"] / 365, size=n)
    gifts = [
        pd.DataFrame({"customer": np.arange(n), "day": first, "alive_after": alive, "category": campaign})
    ]
    lo = 0.0
    for day, name in zip([*days, end], [*names, None]):
        gifts.append(_spontaneous(alive & (first < day), rate, np.maximum(first, lo), day, rng))
        if name is None:
            break
        gives = alive & (first < day) & (rng.random(n) < give)
        alive = alive & ~(gives & (rng.random(n) < drop))
        lag = rng.gamma(process["lag_shape"], process["lag_scale"], size=n)
        donor = np.flatnonzero(gives)
        gifts.append(
            pd.DataFrame(
                {"customer": donor, "day": day + lag[donor], "alive_after": alive[donor], "category": name}
            )
        )
        lo = day
    frame = pd.concat(gifts, ignore_index=True)
    frame = frame.loc[frame["day"] < end]
    return frame.sort_values(["customer", "day"], kind="stable", ignore_index=True)


def make_events(*, seed: int = 0, n_customers: int = 3000) -> Shape:
    """Donations around a spring (20 April) and a December (1 December) appeal, 2023-04 to 2026-03-31.

    Donors are acquired by an appeal (80%, December twice as often) or on any day; half never give
    again; the rest answer each later appeal with probability ~ Beta(3, 2) and stop after such a gift
    with probability ~ Beta(1, 4), and give spontaneously at ~0.3 gifts a year while active. A gift
    comes Gamma(1.5, scale 3) days after its appeal. Amounts are multiples of 5. The horizon after
    the as-of date holds the spring appeal; the log runs ``EVENTS_TAIL_DAYS`` past the horizon.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    start, as_ofs, end = _calendar("2023-04-01", ("2026-03-31",), HORIZON_DAYS, tail_days=EVENTS_TAIL_DAYS)
    days, names = _event_days(start, end)
    purchases = _simulate_gifts(n_customers, days, names, end=end, rng=rng)
    truth = {
        "model": "appeal-driven gifts with one-time donors, per-appeal response and dropout",
        "events": [(start + pd.Timedelta(days=d)).date().isoformat() for d in days],
        "event_names": names.tolist(),
        "event_process": {k: list(v) if isinstance(v, tuple) else v for k, v in EVENTS.items()},
        "event_acquisition_weights": EVENT_WEIGHTS,
    }
    return _shape(
        "events", purchases, n_customers=n_customers, seed=seed, start=start, as_ofs=as_ofs, end=end,
        style=DONATIONS, truth=truth, rng=rng,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# donations: two one-week giving events a year, quiet months between
# --------------------------------------------------------------------------------------------------

DONATION_DATES = {"january": "01-08", "july": "07-08"}  # the giving weeks' first days (month-day)
DONATION_WEIGHTS = {"january": 1.0, "july": 1.0}
DONATION_EVENTS = {
    "acquired_at_event": 0.95,
    "one_time": 0.5,
    "give_ab": (2.0, 2.0),  # a repeat donor gives at each later event with probability ~ Beta(2, 2)
    "drop_ab": (1.0, 5.0),  # and stops after such a gift with probability ~ Beta(1, 5)
    "lag_shape": 2.0,  # gift lag ~ Gamma(2, scale 1) days: 98% within the week
    "lag_scale": 1.0,
    "off_event_per_year": 0.05,
}
#: Between events gifts are rare: the log runs two weeks past the last window, as the events shape's does.
DONATIONS_TAIL_DAYS = 14


def make_donations(*, seed: int = 0, n_customers: int = 4000) -> Shape:
    """Giving concentrated in two one-week events a year (from 8 January and 8 July), 2022-01 to 2026-02.

    Donors are acquired at an event (95%) or on any day; half never give again (about 60% of the log gives once); the rest give at each
    later event with probability ~ Beta(2, 2), stop after such a gift with probability ~ Beta(1, 5), and
    give almost nothing between events (0.05 gifts a year). As of 30 April and 31 October of 2024 and
    2025: between events, with the window behind the as-of day empty of events and the one ahead
    holding one (the backtest window cannot judge a churn model; the same window a year earlier can).

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : donors in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    dates = ("2024-04-30", "2024-10-31", "2025-04-30", "2025-10-31")
    start, as_ofs, end = _calendar("2022-01-01", dates, HORIZON_DAYS, tail_days=DONATIONS_TAIL_DAYS)
    days, names = _event_days(start, end, DONATION_DATES)
    purchases = _simulate_gifts(n_customers, days, names, end=end, rng=rng, process=DONATION_EVENTS,
                                weights=DONATION_WEIGHTS)
    truth = {
        "model": "two one-week giving events a year; one-time donors, per-event response and dropout",
        "events": [(start + pd.Timedelta(days=d)).date().isoformat() for d in days],
        "event_names": names.tolist(),
        "event_process": {k: list(v) if isinstance(v, tuple) else v for k, v in DONATION_EVENTS.items()},
    }
    return _shape(
        "donations", purchases, n_customers=n_customers, seed=seed, start=start, as_ofs=as_ofs, end=end,
        style=DONATIONS, truth=truth, rng=rng,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# retail_q4: six years of retail with a strong November and December
# --------------------------------------------------------------------------------------------------

RETAIL_Q4_BGNBD = BGNBDParams(r=1.2, alpha=60.0, a=0.5, b=6.0)
#: Relative buying by month (before normalising to a yearly mean of 1): the holidays, a January lull.
RETAIL_Q4_MONTHS = {1: 0.75, 2: 0.8, 3: 0.9, 4: 0.9, 5: 0.95, 6: 0.95, 7: 0.9, 8: 0.95, 9: 1.0, 10: 1.2,
                    11: 1.9, 12: 2.6}


def _monthly_season(start: pd.Timestamp, n_days: int, months: dict[int, float]) -> np.ndarray:
    """s(day) per calendar day from relative monthly levels, scaled to a mean of 1 over the days."""
    level = np.array([months[m] for m in (start + pd.to_timedelta(np.arange(n_days), unit="D")).month])
    return level / level.mean()


def make_retail_q4(*, seed: int = 0, n_customers: int = 4000) -> Shape:
    """Six years of BG/NBD retail buying on a seasonal clock with a strong Q4, 2020-01-01 to 2026-03-31.

    As :func:`make_seasonal_q4` (time change of BG/NBD by S(t) = ∫ s), with monthly levels
    :data:`RETAIL_Q4_MONTHS` (December 2.6x, January 0.75x before normalising) and acquisition on the
    same clock. As of every quarter end of 2025; ``benchmarks/zoo_future.py`` judges it at every quarter
    end of three years.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    dates = ("2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31")
    start, as_ofs, end = _calendar("2020-01-01", dates, HORIZON_DAYS)
    season = _monthly_season(start, int(end), RETAIL_Q4_MONTHS)
    purchases = simulate_bgnbd(n_customers, **asdict(RETAIL_Q4_BGNBD), start=0.0, end=float(season.sum()), rng=rng)
    purchases = purchases.assign(day=_to_calendar(purchases["day"].to_numpy(), season))
    truth = {
        "model": "BG/NBD on the operational clock S(t); intensity lambda_i * s(t) in calendar days",
        "bgnbd": _bgnbd_truth(RETAIL_Q4_BGNBD),
        "season": {"monthly": RETAIL_Q4_MONTHS, "s_peak": float(season.max()), "s_low": float(season.min())},
    }
    return _shape(
        "retail_q4", _from_bgnbd(purchases), n_customers=n_customers, seed=seed, start=start,
        as_ofs=as_ofs, end=end, style=RETAIL, truth=truth, rng=rng,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# wholesale: regular orders of a few large accounts
# --------------------------------------------------------------------------------------------------

WHOLESALE = {
    "gap_shape": 4.0,  # inter-order gap ~ Gamma(shape, mean gap_i / shape): coefficient of variation 0.5
    "mean_gap_shape": 4.0,  # mean gap_i ~ Gamma(4, scale 7) days (mean 28)
    "mean_gap_scale": 7.0,
    "existing_accounts": 0.8,  # share of accounts already ordering when the log starts
    "drop_ab": (1.0, 99.0),  # inactive after each repeat order with probability ~ Beta (mean 0.01)
}
WHOLESALE_STYLE = _Style(
    GammaGammaParams(p=6.0, q=5.0, gamma=800.0), ("edi", "portal", "phone"),
    ("packaging", "cleaning", "catering", "office"), return_rate=0.03, unit_price=25.0,
)  # fmt: skip


def _renewal_purchases(
    first_day: np.ndarray,
    mean_gap: np.ndarray,
    j_drop: np.ndarray,
    *,
    shape: float,
    end: float,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Repeat orders of a gamma renewal process (gap ~ Gamma(shape, mean_gap / shape) days).

    Same blocks and dropout rule as ``seeds.generate._repeat_purchases`` (one step per order number).
    """
    blocks = []
    active = np.arange(first_day.size)
    t = first_day.astype(np.float64, copy=True)
    k = 0
    while active.size:
        k += 1
        t_next = t[active] + rng.gamma(shape, mean_gap[active] / shape)
        inside = t_next < end
        active, t_next = active[inside], t_next[inside]
        t[active] = t_next
        blocks.append((active, t_next, k))
        active = active[j_drop[active] > k]
    return blocks


def make_wholesale(*, seed: int = 0, n_customers: int = 400) -> Shape:
    """B2B wholesale: few accounts, regular large orders, 2025-03-01 to as of 2025-12-31 (305 days).

    Account i orders every ``Gamma(4, mean_gap_i / 4)`` days (a renewal process, less bursty than
    Poisson), with ``mean_gap_i ~ Gamma(4, scale 7)`` days; 80% of accounts already order when the
    log starts (first order uniform within one mean gap), the rest join uniformly. After each repeat
    order an account leaves with probability ~ Beta(1, 99). Orders average 1,200 (Gamma-Gamma).

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator.
    n_customers : customers in the whole log (some are first seen after an as-of date).
    """
    rng = np.random.default_rng(seed)
    start, as_ofs, end = _calendar("2025-03-01", ("2025-12-31",), HORIZON_DAYS)
    mean_gap = rng.gamma(WHOLESALE["mean_gap_shape"], WHOLESALE["mean_gap_scale"], size=n_customers)
    existing = rng.random(n_customers) < WHOLESALE["existing_accounts"]
    first_day = np.where(
        existing, rng.random(n_customers) * mean_gap, rng.uniform(0.0, end, size=n_customers)
    )
    first_day = np.minimum(first_day, np.nextafter(end, 0))
    j_drop = rng.geometric(rng.beta(*WHOLESALE["drop_ab"], size=n_customers))
    blocks = _renewal_purchases(first_day, mean_gap, j_drop, shape=WHOLESALE["gap_shape"], end=end, rng=rng)
    truth = {
        "model": "gamma renewal orders with per-order dropout (not BG/NBD: gaps are regular)",
        "wholesale": {k: list(v) if isinstance(v, tuple) else v for k, v in WHOLESALE.items()},
        "gap_cv": float(1.0 / np.sqrt(WHOLESALE["gap_shape"])),
    }
    return _shape(
        "wholesale", _purchase_frame(first_day, blocks, j_drop), n_customers=n_customers, seed=seed,
        start=start, as_ofs=as_ofs, end=end, style=WHOLESALE_STYLE, truth=truth, rng=rng,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# subscription: a steady monthly rhythm until a lapse the touchpoints announce
# --------------------------------------------------------------------------------------------------

SUBSCRIPTION = {
    "gap_shape": 16.0,  # inter-order gap ~ Gamma(16, mean gap_i / 16): coefficient of variation 0.25
    "mean_gap_shape": 36.0,  # mean gap_i ~ Gamma(36, scale 5/6) days (mean 30, sd 5)
    "mean_gap_scale": 5.0 / 6.0,
    "existing": 0.05,  # share of subscribers already ordering when the log starts
    "drop_ab": (2.0, 14.0),  # the box is cancelled after each repeat order with probability ~ Beta (mean 0.125)
}
SUBSCRIPTION_STYLE = _Style(
    GammaGammaParams(p=20.0, q=21.0, gamma=40.0), ("web", "app"), ("box", "box_plus", "add_on"),
    return_rate=0.01, unit_price=40.0, step=0.5,
)  # fmt: skip
#: The touchpoints (seeds.events.simulate_events): weekly e-mails whose opening fades over the 75 days before
#: the last order, complaints and support contacts that come faster then, detractor answers to a bimonthly
#: survey, unsubscribes after the lapse.
SUBSCRIPTION_EVENTS = EventTruth(
    lapse_window_days=75.0, survey_every_days=61, survey_response=0.35, p_detractor=0.06, p_detractor_lapsing=0.85,
    support_rate_lapsing=1 / 25, complaint_rate_lapsing=1 / 45, email_every_days=7, open_rate=0.5,
    open_rate_lapsed=0.04, unsubscribe_after_lapse=0.4,
)  # fmt: skip


def _lapse_days(purchases: pd.DataFrame, n_customers: int) -> np.ndarray:
    """Per customer the day of the last order before the cancellation (inf: still subscribed at the end)."""
    last = purchases.loc[~purchases["alive_after"]].groupby("customer")["day"].max()
    lapse = np.full(n_customers, np.inf)
    lapse[last.index.to_numpy()] = last.to_numpy()
    return lapse


def _events_frame(events: pd.DataFrame, *, n_customers: int, start: pd.Timestamp) -> pd.DataFrame:
    """``seeds.events.simulate_events`` output in the events contract, the customers named as the transactions'."""
    frame = pd.DataFrame({
        "customer_id": _codes("C", events["customer"].to_numpy() + 1, width=max(5, len(str(n_customers)))).to_numpy(),
        "timestamp": start + pd.to_timedelta(events["day"].to_numpy(), unit="D").floor("s"),
        "kind": events["kind"].to_numpy(),
        "value": events["value"].to_numpy(),
    })
    return frame.sort_values("timestamp", kind="stable", ignore_index=True)


def make_subscription(*, seed: int = 0, n_customers: int = 2500) -> Shape:
    """A subscription box, 2024-01-01 to as of 2025-12-31: orders on a steady rhythm until a cancellation
    that the touchpoints announce weeks before and the purchases do not.

    Customer i orders every ``Gamma(16, mean_gap_i / 16)`` days (a renewal process, CV 0.25) with
    ``mean_gap_i ~ Gamma(36, scale 5/6)`` days (about monthly); 5% already subscribe when the log starts (first
    order within one mean gap), the others sign up over the whole log (the horizon included) at a linearly
    rising rate: a growing business. After each repeat order the box is cancelled with probability ``p_i ~ Beta(2, 14)``, and the
    rhythm holds to the last order. The events (:data:`SUBSCRIPTION_EVENTS`, :func:`seeds.events.simulate_events`)
    know the last order's day: over the 75 days before it e-mail opening fades from 50% to 4%, complaints,
    support contacts and poor CSAT answers come faster, and 85% of survey answers are a detractor's. So among
    customers who bought lately, only the touchpoints tell the ones whose last order has come.

    Parameters
    ----------
    seed : seeds the shape's one numpy Generator (the events draw from their own, seeded with it).
    n_customers : customers in the whole log (some are first seen after the as-of date).
    """
    rng = np.random.default_rng(seed)
    start, as_ofs, end = _calendar("2024-01-01", ("2025-12-31",), HORIZON_DAYS)
    mean_gap = rng.gamma(SUBSCRIPTION["mean_gap_shape"], SUBSCRIPTION["mean_gap_scale"], size=n_customers)
    existing = rng.random(n_customers) < SUBSCRIPTION["existing"]
    signed_up = end * np.sqrt(rng.random(n_customers))  # a growing business: sign-ups rise linearly
    first_day = np.where(existing, rng.random(n_customers) * mean_gap, signed_up)
    j_drop = rng.geometric(rng.beta(*SUBSCRIPTION["drop_ab"], size=n_customers))
    blocks = _renewal_purchases(first_day, mean_gap, j_drop, shape=SUBSCRIPTION["gap_shape"], end=end, rng=rng)
    purchases = _purchase_frame(first_day, blocks, j_drop)
    events = simulate_events(first_day, _lapse_days(purchases, n_customers), end=end, truth=SUBSCRIPTION_EVENTS,
                             seed=seed)
    truth = {
        "model": "gamma renewal orders with per-order cancellation; touchpoints announce the last order",
        "subscription": {k: list(v) if isinstance(v, tuple) else v for k, v in SUBSCRIPTION.items()},
        "gap_cv": float(1.0 / np.sqrt(SUBSCRIPTION["gap_shape"])),
        "events": asdict(SUBSCRIPTION_EVENTS),
    }
    shape = _shape(
        "subscription", purchases, n_customers=n_customers, seed=seed, start=start, as_ofs=as_ofs, end=end,
        style=SUBSCRIPTION_STYLE, truth=truth, rng=rng,
    )  # fmt: skip
    return replace(shape, events=_events_frame(events, n_customers=n_customers, start=start))


# --------------------------------------------------------------------------------------------------
# Registry and command line
# --------------------------------------------------------------------------------------------------

SHAPES: dict[str, Callable[..., Shape]] = {
    "one_time": make_one_time,
    "no_dropout": make_no_dropout,
    "all_drop": make_all_drop,
    "seasonal_q4": make_seasonal_q4,
    "young": make_young,
    "events": make_events,
    "wholesale": make_wholesale,
    "grocery": make_grocery,
    "returns": make_returns,
    "donations": make_donations,
    "retail_q4": make_retail_q4,
    "subscription": make_subscription,
    "bursts": make_bursts,
}


def main(argv: list[str] | None = None) -> None:
    """``python -m churnclv.seeds.zoo NAME --out F.csv [--seed N] [--customers N] [--truth T.json] [--events-out E.csv]``,
    or ``--list``."""
    parser = argparse.ArgumentParser(prog="python -m churnclv.seeds.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=list(SHAPES), metavar="NAME", help="a shape (see --list)")
    parser.add_argument("--out", type=Path, help="CSV file for the whole log (history and future)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--customers", type=int, default=None, help="default: the shape's own")
    parser.add_argument("--truth", type=Path, default=None, help="also write the truth dict as JSON")
    parser.add_argument("--events-out", type=Path, default=None,
                        help="also write the shape's touchpoints (the events contract) as CSV, if it has any")
    parser.add_argument("--list", action="store_true", help="list the shapes and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, description in DESCRIPTIONS.items():
            print(f"{name:<12} {description}")
        return
    if args.name is None or args.out is None:
        parser.error("NAME and --out are required (or --list)")
    sizes = {} if args.customers is None else {"n_customers": args.customers}
    shape = SHAPES[args.name](seed=args.seed, **sizes)
    if args.events_out is not None and shape.events is None:
        parser.error(f"the shape {shape.name} has no events (--events-out)")
    write_transactions_csv(shape.transactions, args.out)
    if args.truth is not None:
        args.truth.write_text(json.dumps(shape.truth, indent=2) + "\n")
    if args.events_out is not None:
        write_table(shape.events, args.events_out)
    tx = shape.transactions
    as_ofs = ", ".join(d.date().isoformat() for d in shape.as_ofs)
    print(
        f"wrote {len(tx):,} rows of {tx['customer_id'].nunique():,} customers ({shape.name}) to {args.out}; "
        f"as of {as_ofs}, horizon {shape.horizon_days} days"
    )


if __name__ == "__main__":
    main()
