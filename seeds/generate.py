"""Synthetic transaction logs with known BG/NBD and Gamma-Gamma parameters.

Purchases follow the BG/NBD model exactly (Fader, Hardie & Lee 2005, "Counting your customers
the easy way"): while alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r,
rate alpha)``; after each *repeat* purchase they become inactive with probability ``p ~ Beta(a,
b)``. Spend per order follows the Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV"):
``nu ~ Gamma(q, rate gamma)`` per customer and ``z ~ Gamma(p, rate nu)`` per order.

Time is measured in days throughout: ``start``/``end`` are positions on one day axis, ``alpha`` is
a rate per day (a weekly ``alpha`` times 7). The seed sample adds behaviour that RFM does not see
(declining baskets, a channel shift and more returns just before a customer drops out); those
perturb the amounts only, never the purchase times.

Command line: ``python -m churnclv.seeds.generate --customers 4000 --seed 7 --out seeds/transactions.csv``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CDNOW_LIKE",
    "SEED_BGNBD",
    "SEED_CAMPAIGN",
    "SEED_SPEND",
    "BGNBDParams",
    "CampaignSimulation",
    "GammaGammaParams",
    "SegmentEffect",
    "draw_spend",
    "main",
    "make_seed_transactions",
    "seed_lapses",
    "simulate_bgnbd",
    "simulate_bgnbd_summary",
    "simulate_campaign",
    "simulate_campaign_outcomes",
    "summarise_days",
    "true_params",
    "write_campaign",
    "write_transactions_csv",
]


@dataclass(frozen=True)
class BGNBDParams:
    """BG/NBD parameters; ``alpha`` is a rate per DAY (weekly alpha × 7)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters (``gamma`` is lifetimes' ``v``); mean spend = p·gamma/(q-1)."""

    p: float
    q: float
    gamma: float


#: CDNOW master-log estimates (Fader, Hardie & Lee 2005: r=0.243, alpha=4.414 per week, a=0.793, b=2.426).
CDNOW_LIKE = BGNBDParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
#: The committed seed sample: a busier retailer than CDNOW (≈ one order every 6 weeks, ≈ 1 in 8 repeat
#: orders is a customer's last).
SEED_BGNBD = BGNBDParams(r=0.9, alpha=6.0 * 7, a=0.6, b=4.0)
SEED_SPEND = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)

SEED_START = pd.Timestamp("2024-01-01")
SEED_END = pd.Timestamp("2025-12-31")  # last observed calendar day (inclusive)
SEED_ACQUISITION_DAYS = 640  # first purchases fall in the first 640 days (≥ ~3 months of history each)

CHANNELS = ("web", "app", "store")
CHANNEL_SHARES = (0.5, 0.3, 0.2)
CATEGORIES = ("grocery", "home", "fashion", "electronics", "beauty")
CATEGORY_SHARES = (0.35, 0.2, 0.2, 0.1, 0.15)
#: Spend multiplier on the last, second-to-last and third-to-last order before a customer drops out.
DECLINE = (0.7, 0.8, 0.9)
RETURN_RATE = 0.025
RETURN_RATE_NEAR_DROPOUT = 0.15
STORE_SHIFT_NEAR_DROPOUT = 0.6


# --------------------------------------------------------------------------------------------------
# BG/NBD purchases
# --------------------------------------------------------------------------------------------------


def _draw_latent(
    n_customers: int, *, r: float, alpha: float, a: float, b: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer purchase rate ``lam`` (per day) and repeat purchases until dropout ``j_drop``.

    ``j_drop ~ Geometric(p)`` (support 1, 2, …): the customer becomes inactive right after repeat
    purchase number ``j_drop``, which is the BG/NBD coin flip after each repeat purchase drawn up front.
    """
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n_customers)
    p = np.clip(rng.beta(a, b, size=n_customers), 1e-12, 1.0)
    j_drop = rng.geometric(p)
    return lam, j_drop


def _repeat_purchases(
    first_day: np.ndarray, lam: np.ndarray, j_drop: np.ndarray, *, end: float, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Repeat purchases as (customer, day, purchase number) blocks; one loop step per purchase number."""
    blocks = []
    active = np.arange(first_day.size)
    t = first_day.astype(np.float64, copy=True)
    k = 0
    while active.size:
        k += 1
        t_next = t[active] + rng.standard_exponential(active.size) / lam[active]
        inside = t_next < end
        active, t_next = active[inside], t_next[inside]
        t[active] = t_next
        blocks.append((active, t_next, k))
        active = active[j_drop[active] > k]  # inactive right after repeat purchase j_drop
    return blocks


def simulate_bgnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    start: float,
    end: float,
    rng: np.random.Generator,
    acquisition_end: float | None = None,
) -> pd.DataFrame:
    """Simulate BG/NBD purchase times for ``n_customers`` customers (vectorised over customers).

    Parameters
    ----------
    n_customers : number of customers; each makes a first purchase inside the window.
    r, alpha : Gamma(shape r, rate alpha) heterogeneity of the purchase rate; ``alpha`` per DAY.
    a, b : Beta(a, b) heterogeneity of the dropout probability after each repeat purchase.
    start, end : observation window in days on one axis; purchases at ``day >= end`` are cut.
    rng : numpy Generator (the only source of randomness).
    acquisition_end : first purchases are uniform on ``[start, acquisition_end)`` (default ``end``).

    Returns
    -------
    DataFrame with one row per purchase, sorted by (customer, day):
    ``customer`` (int64, 0..n-1), ``day`` (float64, continuous purchase time in days; its floor is the
    calendar day), ``purchase_number`` (int64, 0 = first purchase, k = k-th repeat) and ``to_dropout``
    (int64, repeat purchases still to come before the customer becomes inactive; 0 = this is the last
    purchase the customer will ever make, known only to the simulator).
    """
    lam, j_drop = _draw_latent(n_customers, r=r, alpha=alpha, a=a, b=b, rng=rng)
    first_day = rng.uniform(start, end if acquisition_end is None else acquisition_end, size=n_customers)
    blocks = [(np.arange(n_customers), first_day, 0)]
    blocks += _repeat_purchases(first_day, lam, j_drop, end=end, rng=rng)
    customer = np.concatenate([c for c, _, _ in blocks])
    number = np.concatenate([np.full(c.size, k, dtype=np.int64) for c, _, k in blocks])
    frame = pd.DataFrame(
        {
            "customer": customer.astype(np.int64),
            "day": np.concatenate([d for _, d, _ in blocks]),
            "purchase_number": number,
            "to_dropout": j_drop[customer] - number,
        }
    )
    return frame.sort_values(["customer", "day"], kind="stable", ignore_index=True)


def summarise_days(purchases: pd.DataFrame, *, end: float) -> pd.DataFrame:
    """Per-customer ``frequency``, ``recency``, ``T`` in days, with lifetimes' conventions.

    Purchases are collapsed to distinct calendar days (``floor(day)``); ``frequency`` is the number
    of distinct purchase days after the first; ``recency`` is days from the first to the last purchase
    day (0 when frequency is 0); ``T`` is days from the first purchase day to the last observed day
    ``ceil(end) - 1``. Rows with ``day >= end`` are ignored. Index: ``customer``.
    """
    observed = purchases.loc[purchases["day"] < end]
    customer = observed["customer"].to_numpy(np.int64)
    calendar_day = np.floor(observed["day"].to_numpy()).astype(np.int64)
    pairs = pd.DataFrame({"customer": customer, "calendar_day": calendar_day}).drop_duplicates()
    grouped = pairs.groupby("customer")["calendar_day"]
    first, last, n_days = grouped.min(), grouped.max(), grouped.size()
    last_observed_day = int(np.ceil(end)) - 1
    return pd.DataFrame(
        {
            "frequency": (n_days - 1).astype(np.float64),
            "recency": (last - first).astype(np.float64),
            "T": (last_observed_day - first).astype(np.float64),
        }
    )


def simulate_bgnbd_summary(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    start: float,
    end: float,
    rng: np.random.Generator,
    acquisition_end: float | None = None,
) -> pd.DataFrame:
    """``summarise_days(simulate_bgnbd(...))``: frequency / recency / T in days for a BG/NBD population.

    For the CLV benchmark, e.g. ``simulate_bgnbd_summary(1_000_000, **asdict(CDNOW_LIKE), start=0,
    end=730, rng=np.random.default_rng(0))``; divide recency and T by 7 for weekly units.
    """
    purchases = simulate_bgnbd(
        n_customers,
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        start=start,
        end=end,
        rng=rng,
        acquisition_end=acquisition_end,
    )
    return summarise_days(purchases, end=end)


# --------------------------------------------------------------------------------------------------
# Gamma-Gamma spend
# --------------------------------------------------------------------------------------------------


def draw_spend(
    customer: np.ndarray, *, n_customers: int, p: float, q: float, gamma: float, rng: np.random.Generator
) -> np.ndarray:
    """Gamma-Gamma order values: ``nu_i ~ Gamma(q, rate gamma)``, ``z ~ Gamma(p, rate nu_customer)``.

    ``customer`` holds each order's customer index (0..n_customers-1); returns one value per order,
    in currency units, with mean ``p * gamma / (q - 1)``.
    """
    nu = rng.gamma(shape=q, scale=1.0 / gamma, size=n_customers)
    return rng.gamma(shape=p, size=customer.size) / nu[customer]


# --------------------------------------------------------------------------------------------------
# The seed sample
# --------------------------------------------------------------------------------------------------


def _decline_factor(to_dropout: np.ndarray) -> np.ndarray:
    """Spend multiplier: DECLINE[k] on the order k orders before dropout, 1 elsewhere."""
    factors = np.append(np.asarray(DECLINE, dtype=np.float64), 1.0)
    return factors[np.minimum(to_dropout, len(DECLINE))]


def _timestamps(day: np.ndarray, channel: np.ndarray, *, start: pd.Timestamp) -> pd.Series:
    """Calendar day ``floor(day)``; web/app orders get a time of day 08:00–22:00 that is monotone in
    the fractional day (so the BG/NBD order is kept), store orders are at midnight (date only)."""
    whole = np.floor(day)
    seconds = np.round(8 * 3600 + (day - whole) * 14 * 3600)
    seconds = np.where(channel == "store", 0.0, seconds)
    offset = pd.to_timedelta(whole * 86_400 + seconds, unit="s")
    return pd.Series(start + offset, dtype="datetime64[ns]")


def _orders(
    purchases: pd.DataFrame, *, n_customers: int, perturb: bool, rng: np.random.Generator
) -> pd.DataFrame:
    """Orders with amount, quantity, channel and category from BG/NBD purchases (customer indices).

    With ``perturb`` the last ``len(DECLINE)`` orders before a dropout shrink, shift to the store and
    are returned more often (``return_rate`` is the chance the order is returned later).
    """
    customer = purchases["customer"].to_numpy()
    near_dropout = (purchases["to_dropout"].to_numpy() < len(DECLINE)) & perturb
    spend = draw_spend(customer, n_customers=n_customers, **asdict(SEED_SPEND), rng=rng)
    decline = _decline_factor(purchases["to_dropout"].to_numpy()) if perturb else 1.0
    amount = np.round(spend * decline, 2)
    favourite_channel = rng.choice(len(CHANNELS), size=n_customers, p=CHANNEL_SHARES)
    channel = np.where(
        rng.random(customer.size) < 0.8,
        favourite_channel[customer],
        rng.choice(len(CHANNELS), size=customer.size, p=CHANNEL_SHARES),
    )
    channel = np.where(near_dropout & (rng.random(customer.size) < STORE_SHIFT_NEAR_DROPOUT), 2, channel)
    favourite_category = rng.choice(len(CATEGORIES), size=n_customers, p=CATEGORY_SHARES)
    category = np.where(
        rng.random(customer.size) < 0.6,
        favourite_category[customer],
        rng.choice(len(CATEGORIES), size=customer.size, p=CATEGORY_SHARES),
    )
    return pd.DataFrame(
        {
            "customer": customer,
            "day": purchases["day"].to_numpy(),
            "amount": amount,
            "quantity": 1.0 + rng.poisson(amount / 20.0),
            "channel": np.asarray(CHANNELS)[channel],
            "category": np.asarray(CATEGORIES)[category],
            "return_rate": np.where(near_dropout, RETURN_RATE_NEAR_DROPOUT, RETURN_RATE),
        }
    )


def _returns(orders: pd.DataFrame, *, end: float, rng: np.random.Generator) -> pd.DataFrame:
    """Return rows for some orders: half full, half partial (20–80%), 2–14 days later, cut at ``end``."""
    returned = orders.loc[rng.random(len(orders)) < orders["return_rate"].to_numpy()]
    full = rng.random(len(returned)) < 0.5
    share = np.where(full, 1.0, rng.uniform(0.2, 0.8, size=len(returned)))
    quantity = returned["quantity"].to_numpy()
    day = returned["day"].to_numpy() + rng.uniform(2.0, 14.0, size=len(returned))
    return returned.assign(
        day=day,
        amount=-np.round(returned["amount"].to_numpy() * share, 2),
        quantity=np.where(full, quantity, np.maximum(1.0, np.round(quantity * share))),
        order_id=returned["order_id"] + "-R",
    ).loc[day < end]


def _codes(prefix: str, numbers: np.ndarray, *, width: int) -> pd.Series:
    """Zero-padded string codes such as "C00001" (vectorised)."""
    return prefix + pd.Series(numbers, dtype=np.int64).astype("str").str.zfill(width)


def _canonical(rows: pd.DataFrame, *, n_customers: int, start: pd.Timestamp) -> pd.DataFrame:
    """The canonical transaction frame, sorted by timestamp then order id."""
    width = max(5, len(str(n_customers)))
    customer_id = _codes("C", rows["customer"].to_numpy() + 1, width=width)
    frame = pd.DataFrame(
        {
            "customer_id": customer_id,
            "timestamp": _timestamps(rows["day"].to_numpy(), rows["channel"].to_numpy(), start=start),
            "amount": rows["amount"].to_numpy(np.float64),
            "order_id": rows["order_id"].astype("str").to_numpy(),
            "quantity": rows["quantity"].to_numpy(np.float64),
            "channel": rows["channel"].astype("str").to_numpy(),
            "category": rows["category"].astype("str").to_numpy(),
        }
    )
    return frame.sort_values(["timestamp", "order_id"], kind="stable", ignore_index=True)


def make_seed_transactions(n_customers: int = 4000, *, seed: int = 7, perturb: bool = True) -> pd.DataFrame:
    """The seed sample: BG/NBD purchases (SEED_BGNBD) with Gamma-Gamma spend (SEED_SPEND), 2024–2025.

    Returns the canonical transaction frame (``customer_id`` "C00001"…, ``timestamp``, ``amount``
    with returns negative and suffixed ``-R`` order ids, ``order_id``, ``quantity`` (whole units
    ≥ 1), ``channel``, ``category``), sorted by timestamp. Deterministic in ``seed``.
    Orders before a customer's dropout shrink (DECLINE), move to the store and are returned more;
    ``perturb=False`` switches that off for testing Gamma-Gamma recovery: the same orders (customers,
    days, order ids) with pure Gamma-Gamma amounts and a uniform return rate.
    """
    rng = np.random.default_rng(seed)
    end = float((SEED_END - SEED_START).days + 1)
    purchases = simulate_bgnbd(
        n_customers,
        **asdict(SEED_BGNBD),
        start=0.0,
        end=end,
        rng=rng,
        acquisition_end=float(SEED_ACQUISITION_DAYS),
    )
    orders = _orders(purchases, n_customers=n_customers, perturb=perturb, rng=rng)
    orders = orders.sort_values("day", kind="stable")
    orders = orders.assign(order_id=_codes("O", np.arange(1, len(orders) + 1), width=7).to_numpy())
    rows = pd.concat([orders, _returns(orders, end=end, rng=rng)], ignore_index=True)
    return _canonical(rows, n_customers=n_customers, start=SEED_START)


def seed_lapses(n_customers: int = 4000, *, seed: int = 7) -> pd.DataFrame:
    """What only the simulator knows of ``make_seed_transactions(n_customers, seed=seed)``: per customer
    (``customer_id``), the day of the first purchase and of the last one before the dropout (``lapse_day``,
    inf for a customer still active at the end), in days since SEED_START (the same draws, replayed)."""
    end = float((SEED_END - SEED_START).days + 1)
    purchases = simulate_bgnbd(n_customers, **asdict(SEED_BGNBD), start=0.0, end=end,
                               rng=np.random.default_rng(seed), acquisition_end=float(SEED_ACQUISITION_DAYS))
    first = purchases.groupby("customer")["day"].min()
    lapse = purchases.loc[purchases["to_dropout"] == 0].groupby("customer")["day"].max()
    return pd.DataFrame({
        "customer_id": _codes("C", first.index.to_numpy() + 1, width=max(5, len(str(n_customers)))).to_numpy(),
        "first_day": first.to_numpy(),
        "lapse_day": lapse.reindex(first.index, fill_value=np.inf).to_numpy(),
    })


def true_params(n_customers: int, *, seed: int, transactions: pd.DataFrame | None = None) -> dict:
    """The generating parameters of ``make_seed_transactions(n_customers, seed=seed)`` (JSON-ready)."""
    params = {
        "generator": "churnclv.seeds.generate.make_seed_transactions",
        "command": f"python -m churnclv.seeds.generate --customers {n_customers} --seed {seed} --out seeds/transactions.csv",
        "n_customers": n_customers,
        "seed": seed,
        "start": SEED_START.date().isoformat(),
        "end": SEED_END.date().isoformat(),
        "end_note": "end is the last observed calendar day (inclusive); first purchases fall on days "
        f"0..{SEED_ACQUISITION_DAYS - 1} after start",
        "bgnbd": {
            "r": SEED_BGNBD.r,
            "alpha_per_day": SEED_BGNBD.alpha,
            "alpha_per_week": SEED_BGNBD.alpha / 7,
            "a": SEED_BGNBD.a,
            "b": SEED_BGNBD.b,
        },
        "gamma_gamma": {
            "p": SEED_SPEND.p,
            "q": SEED_SPEND.q,
            "gamma": SEED_SPEND.gamma,
            "v": SEED_SPEND.gamma,
            "mean_order_value": SEED_SPEND.p * SEED_SPEND.gamma / (SEED_SPEND.q - 1),
        },
        "perturbations": {
            "decline_factor_last_orders": list(DECLINE),
            "return_rate": RETURN_RATE,
            "return_rate_last_orders": RETURN_RATE_NEAR_DROPOUT,
            "store_shift_last_orders": STORE_SHIFT_NEAR_DROPOUT,
        },
        "note": (
            "Purchase times are exactly BG/NBD (alpha_per_day = 7 x alpha_per_week; a lifetimes fit on "
            "recency and T in weeks should recover alpha_per_week). Order amounts are Gamma-Gamma "
            f"(p, q, gamma = lifetimes' v) times a decline factor {list(DECLINE)} on the last, 2nd- and "
            "3rd-to-last order before a customer drops out, rounded to cents: a Gamma-Gamma fit sees "
            "lower and more dispersed values than the pure model (smaller p, larger v). Those last orders "
            f"also switch to the store channel with probability {STORE_SHIFT_NEAR_DROPOUT} and are "
            f"returned with probability {RETURN_RATE_NEAR_DROPOUT} (other orders {RETURN_RATE}). Returns "
            "are extra rows with negative amount (full, or 20-80% partial), order_id + '-R', 2-14 days "
            "later, dropped if after end; they are not purchases and do not change the BG/NBD process. "
            "Several orders on one calendar day collapse into one purchase day in lifetimes summaries. "
            "make_seed_transactions(..., perturb=False) gives the same purchases with pure Gamma-Gamma amounts."
        ),
    }
    if transactions is not None:
        params["sample"] = {
            "rows": len(transactions),
            "orders": int((transactions["amount"] >= 0).sum()),
            "returns": int((transactions["amount"] < 0).sum()),
            "customers": int(transactions["customer_id"].nunique()),
        }
    return params


def write_transactions_csv(transactions: pd.DataFrame, path: str | Path) -> None:
    """Write the frame as CSV: ISO timestamps to the second, amounts with 2 decimals, whole quantities."""
    out = transactions.assign(
        timestamp=transactions["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        quantity=transactions["quantity"].astype(np.int64),
    )
    out.to_csv(path, index=False, lineterminator="\n", float_format="%.2f")


# --------------------------------------------------------------------------------------------------
# A past campaign with known effects (optional: the committed seed files do not include one)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentEffect:
    """One segment of a simulated campaign: its share of members, retention uncontacted, true save rate.

    Retention is the chance of at least one purchase in the window after the campaign day. A contact
    keeps ``save_rate`` of the would-be churners: ``retention_treated = retention_control + save_rate ·
    (1 − retention_control)``. A negative ``save_rate`` lowers retention ("sleeping dogs").
    """

    share: float
    retention_control: float
    save_rate: float

    @property
    def retention_treated(self) -> float:
        return self.retention_control + self.save_rate * (1.0 - self.retention_control)

    @property
    def effect(self) -> float:
        """The true retention difference, treated minus control."""
        return self.retention_treated - self.retention_control


#: The seed campaign's segments (names of ``scoring.segments``): contacts help the at-risk most and
#: lower the loyal customers' retention (sleeping dogs: 0.80 uncontacted, 0.70 contacted).
SEED_CAMPAIGN = {
    "high_value_at_risk": SegmentEffect(share=0.15, retention_control=0.35, save_rate=0.30),
    "at_risk": SegmentEffect(share=0.35, retention_control=0.30, save_rate=0.20),
    "steady": SegmentEffect(share=0.30, retention_control=0.60, save_rate=0.10),
    "loyal": SegmentEffect(share=0.20, retention_control=0.80, save_rate=-0.50),
}
SEED_CAMPAIGN_DATE = pd.Timestamp("2025-09-01")
SEED_CAMPAIGN_WINDOW_DAYS = 90
MEAN_ORDER_VALUE = 30.0


@dataclass(frozen=True)
class CampaignSimulation:
    """A simulated campaign: ``members`` (customer_id, segment, group, churn_probability, clv,
    value_at_risk), their ``transactions`` (canonical: customer_id, timestamp, amount, order_id) and
    the ``truth`` per segment (share, retention_control, retention_treated, effect, save_rate)."""

    members: pd.DataFrame
    transactions: pd.DataFrame
    truth: pd.DataFrame
    campaign_date: pd.Timestamp
    window_days: int


def _truth_table(effects: dict[str, SegmentEffect]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"segment": name, "share": e.share, "retention_control": e.retention_control,
             "retention_treated": e.retention_treated, "effect": e.effect, "save_rate": e.save_rate}
            for name, e in effects.items()
        ]
    )


def simulate_campaign_outcomes(
    members: pd.DataFrame,
    *,
    effects: dict[str, SegmentEffect],
    campaign_date: pd.Timestamp,
    window_days: int,
    rng: np.random.Generator,
    history_days: int = 60,
    after_days: int = 30,
) -> pd.DataFrame:
    """Transactions of campaign members whose retention follows ``effects`` (vectorised).

    Every member buys once in the ``history_days`` before the campaign day. A member is retained
    with probability ``retention_treated`` or ``retention_control`` of their segment and group; a
    retained member buys ``1 + Poisson(0.6)`` times on days ``campaign_date + 1 … + window_days``, and
    with probability 1/2 once more in the ``after_days`` after the window. Order values are
    Gamma(6, scale 5): mean 30. Returns the canonical frame sorted by timestamp (order ids "S…").
    """
    table = _truth_table(effects).set_index("segment")
    treated = members["group"].to_numpy() == "treated"
    p = np.where(treated, table.loc[members["segment"], "retention_treated"].to_numpy(),
                 table.loc[members["segment"], "retention_control"].to_numpy())
    n = len(members)
    retained = rng.random(n) < p
    orders = 1 + rng.poisson(0.6, size=n)
    window_owner = np.repeat(np.flatnonzero(retained), orders[retained])
    after_owner = np.flatnonzero(retained & (rng.random(n) < 0.5))
    owner = np.concatenate([np.arange(n), window_owner, after_owner])
    day = np.concatenate([
        -rng.integers(1, history_days + 1, size=n),
        rng.integers(1, window_days + 1, size=window_owner.size),
        window_days + rng.integers(1, after_days + 1, size=after_owner.size),
    ])
    seconds = rng.integers(8 * 3600, 22 * 3600, size=owner.size)
    frame = pd.DataFrame({
        "customer_id": members["customer_id"].astype("str").to_numpy()[owner],
        "timestamp": (campaign_date.normalize() + pd.to_timedelta(day * 86_400 + seconds, unit="s")).astype(
            "datetime64[ns]"),
        "amount": np.round(rng.gamma(6.0, MEAN_ORDER_VALUE / 6.0, size=owner.size), 2),
    }).sort_values("timestamp", kind="stable", ignore_index=True)
    return frame.assign(order_id=_codes("S", np.arange(1, len(frame) + 1), width=7).to_numpy())


def _stratified_groups(segment: np.ndarray, *, control_share: float, rng: np.random.Generator) -> np.ndarray:
    """``control`` for round(share · n) randomly chosen members of each segment, ``treated`` otherwise."""
    key = rng.random(segment.size)
    order = np.lexsort((key, segment))
    codes = np.unique(segment, return_inverse=True)[1]
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.empty(segment.size, dtype=np.int64)
    position[order] = np.arange(segment.size) - starts[codes[order]]
    return np.where(position < np.floor(control_share * sizes + 0.5)[codes], "control", "treated")


def simulate_campaign(
    n_members: int = 4000,
    *,
    seed: int = 7,
    effects: dict[str, SegmentEffect] | None = None,
    control_share: float = 0.1,
    campaign_date: pd.Timestamp = SEED_CAMPAIGN_DATE,
    window_days: int = SEED_CAMPAIGN_WINDOW_DAYS,
) -> CampaignSimulation:
    """A past campaign with known true save rates per segment (default :data:`SEED_CAMPAIGN`).

    Members fall into segments by the ``share`` of each; in each segment round(control_share · n) of
    them, chosen at random, are controls. Scores are plausible, not fitted: churn probability near
    ``1 − retention_control``, CLV ~ Gamma(2, scale 150), value at risk their product. Transactions
    follow :func:`simulate_campaign_outcomes`. Deterministic in ``seed``; ids "M00001"….
    """
    effects = SEED_CAMPAIGN if effects is None else effects
    rng = np.random.default_rng(seed)
    names = list(effects)
    shares = np.array([effects[s].share for s in names], dtype=np.float64)
    drawn = rng.choice(len(names), size=n_members, p=shares / shares.sum())
    segment = np.asarray(names, dtype=object)[drawn]
    base = 1.0 - np.array([effects[s].retention_control for s in names], dtype=np.float64)[drawn]
    churn = np.clip(base + rng.normal(0.0, 0.08, size=n_members), 0.01, 0.99)
    clv = np.round(rng.gamma(2.0, 150.0, size=n_members), 2)
    members = pd.DataFrame({
        "customer_id": _codes("M", np.arange(1, n_members + 1), width=max(5, len(str(n_members)))).to_numpy(),
        "segment": segment.astype(str),
        "group": _stratified_groups(segment.astype(str), control_share=control_share, rng=rng),
        "churn_probability": churn,
        "clv": clv,
        "value_at_risk": churn * clv,
    })
    transactions = simulate_campaign_outcomes(members, effects=effects, campaign_date=campaign_date,
                                              window_days=window_days, rng=rng)
    return CampaignSimulation(members=members, transactions=transactions, truth=_truth_table(effects),
                              campaign_date=campaign_date, window_days=window_days)


def write_campaign(simulation: CampaignSimulation, folder: str | Path) -> list[Path]:
    """Write ``campaign_members.csv``, ``campaign_transactions.csv`` and ``campaign_truth.json``."""
    folder = Path(folder)
    paths = [folder / "campaign_members.csv", folder / "campaign_transactions.csv", folder / "campaign_truth.json"]
    simulation.members.to_csv(paths[0], index=False, lineterminator="\n", float_format="%.6f")
    simulation.transactions.assign(timestamp=simulation.transactions["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
                                   ).to_csv(paths[1], index=False, lineterminator="\n", float_format="%.2f")
    truth = {"campaign_date": simulation.campaign_date.date().isoformat(), "window_days": simulation.window_days,
             "segments": simulation.truth.to_dict(orient="records")}
    paths[2].write_text(json.dumps(truth, indent=2) + "\n")
    return paths


def main(argv: list[str] | None = None) -> None:
    """``python -m churnclv.seeds.generate --customers 4000 --seed 7 --out seeds/transactions.csv``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("seeds/transactions.csv"))
    parser.add_argument("--params", type=Path, default=None, help="default: true_params.json next to --out")
    parser.add_argument("--campaign", type=Path, default=None, metavar="FOLDER",
                        help="also write a simulated past campaign (members, transactions, truth) there")
    args = parser.parse_args(argv)
    if args.campaign is not None:
        written = write_campaign(simulate_campaign(seed=args.seed), args.campaign)
        print(f"wrote a simulated campaign to {', '.join(map(str, written))}")
    transactions = make_seed_transactions(args.customers, seed=args.seed)
    params_path = args.params or args.out.with_name("true_params.json")
    write_transactions_csv(transactions, args.out)
    params = true_params(args.customers, seed=args.seed, transactions=transactions)
    params_path.write_text(json.dumps(params, indent=2) + "\n")
    print(f"wrote {len(transactions)} rows to {args.out} and the parameters to {params_path}")


if __name__ == "__main__":
    main()
