"""Touchpoint features: survey answers, support contacts, complaints, e-mail engagement, visits, consent.

The events log (:func:`features.validate_events`) sits beside the transactions: ``customer_id, timestamp,
kind, value``. As for purchases, the as-of day ``D`` is seen whole and nothing later is read; a window of
``w`` days is the days ``d`` with ``D - d < w``, and an age is ``D - d`` in days.

Missing is its own value: a customer who never answered a survey has NaN for every survey feature (never
a 0, which would read as the worst NPS), an e-mail rate is NaN where no e-mail was sent in its window, and a
"days since" is NaN where the event never happened. Counts are 0 when there were none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf, as_of_day
from churnclv.features._prep import day_number, day_numbers, factorize, positions

#: The kinds that become features; any other kind is counted in ``other_events_90d``.
EVENT_KINDS = ("nps", "csat", "support_contact", "complaint", "email_sent", "email_open", "email_click",
               "unsubscribe", "visit")
#: Kinds whose ``value`` is an answer, and its range.
SCORED_KINDS = {"nps": (0, 10), "csat": (1, 5)}
#: NPS groups (Reichheld): 0–6 detractor, 7–8 passive, 9–10 promoter, as -1, 0, 1.
DETRACTOR_MAX, PROMOTER_MIN = 6, 9
SHORT, LONG = 30, 90

EVENT_FEATURES = (
    "nps_last", "nps_age_days", "nps_group", "csat_last", "csat_age_days", "survey_worst_90d",
    "support_contacts_30d", "support_contacts_90d", "days_since_support_contact",
    "complaints_30d", "complaints_90d", "days_since_complaint",
    "email_open_rate_30d", "email_open_rate_90d", "email_click_rate_30d", "email_click_rate_90d",
    "email_open_trend", "days_since_email_open", "visits_30d", "days_since_visit", "unsubscribed",
    "other_events_90d",
)


def no_events() -> pd.DataFrame:
    """A canonical events frame without a row: with it every customer has the features of one who never had
    an event (counts 0, everything else missing)."""
    return pd.DataFrame({"customer_id": pd.Series(dtype=str), "timestamp": pd.Series(dtype="datetime64[ns]"),
                         "kind": pd.Series(dtype=str), "value": pd.Series(dtype=float)})


def seen_events(events: pd.DataFrame, *, as_of: AsOf) -> pd.DataFrame:
    """The events on or before the as-of day (the whole day), with ``age`` = days before it (int)."""
    day = pd.Timestamp(as_of_day(as_of))
    seen = events.loc[events["timestamp"] < day + pd.Timedelta(days=1)]
    age = (day - seen["timestamp"].dt.normalize()).dt.days.to_numpy()
    return seen.assign(age=age)


def event_features(events: pd.DataFrame, *, as_of: AsOf, customers: pd.Index) -> pd.DataFrame:
    """One row per customer of ``customers`` (in that order, index ``customer_id``): :data:`EVENT_FEATURES`
    from the canonical events up to ``as_of``. Events of other customers are not read
    (:func:`unknown_customers` counts them)."""
    return pd.DataFrame(event_columns(events, as_of=as_of, customers=customers),
                        index=pd.Index(customers, name="customer_id"), copy=False)


def event_columns(events: pd.DataFrame, *, as_of: AsOf, customers: pd.Index) -> dict[str, np.ndarray]:
    """:func:`event_features` as float64 arrays aligned with ``customers``, in :data:`EVENT_FEATURES` order.

    The events are read as integer arrays once (customer positions, kinds, ages: :func:`_by_kind`); every
    feature is a count or a minimum over one kind's rows.
    """
    n = len(customers)
    rows = _by_kind(events, as_of=as_of, customers=customers)
    code, age = {k: r[0] for k, r in rows.items()}, {k: r[1] for k, r in rows.items()}
    value = {k: events["value"].to_numpy(dtype=float)[rows[k][2]] for k in SCORED_KINDS}
    out = {}
    for name in ("nps", "csat"):
        out[f"{name}_last"], out[f"{name}_age_days"] = _latest(code[name], age[name], value[name], n)
    out["nps_group"] = np.select([out["nps_last"] <= DETRACTOR_MAX, out["nps_last"] >= PROMOTER_MIN],
                                 [-1.0, 1.0], 0.0)
    out["nps_group"][np.isnan(out["nps_last"])] = np.nan
    out["survey_worst_90d"] = _worst_recent(code, age, value, n)
    for name, label in (("support_contact", "support_contacts"), ("complaint", "complaints")):
        out |= _counts(code[name], age[name], n, label)
        out[f"days_since_{name}"] = _min_age(code[name], age[name], n)
    out |= _email_rates(code, age, n)
    out["days_since_email_open"] = _min_age(code["email_open"], age["email_open"], n)
    out["visits_30d"] = _count(code["visit"], age["visit"] < SHORT, n)
    out["days_since_visit"] = _min_age(code["visit"], age["visit"], n)
    out["unsubscribed"] = (_count(code["unsubscribe"], None, n) > 0).astype(float)
    out["other_events_90d"] = _count(code[OTHER], age[OTHER] < LONG, n)
    return {name: out[name] for name in EVENT_FEATURES}


OTHER = "other"
"""The rows of :func:`_by_kind` of the kinds that are not :data:`EVENT_KINDS`."""


def _by_kind(events: pd.DataFrame, *, as_of: AsOf,
             customers: pd.Index) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per kind of :data:`EVENT_KINDS` (and :data:`OTHER`): the customer positions, ages (days before the as-of
    day) and rows in ``events`` of its events on or before the as-of day of customers among ``customers``,
    in the log's order.

    The ids and the kinds are each encoded once (:func:`_prep.positions`, :func:`_prep.factorize`); one
    stable sort of the small kind numbers groups the rows.
    """
    age = day_number(as_of) - day_numbers(events["timestamp"])
    position = positions(customers, events["customer_id"])
    kind_code, kinds = factorize(events["kind"])
    kind_of_code = np.array([EVENT_KINDS.index(k) if k in EVENT_KINDS else len(EVENT_KINDS) for k in kinds]
                            + [len(EVENT_KINDS)], dtype=np.int8)  # the last: a missing kind
    rows = np.flatnonzero((age >= 0) & (position >= 0))
    kind = kind_of_code[kind_code[rows]]
    rows = rows[np.argsort(kind, kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(kind, minlength=len(EVENT_KINDS) + 1))]
    out = {}
    for k, name in enumerate((*EVENT_KINDS, OTHER)):
        mine = rows[bounds[k]: bounds[k + 1]]
        out[name] = (position[mine], age[mine], mine)
    return out


def unknown_customers(events: pd.DataFrame, customers: pd.Index) -> tuple[int, int, list[str]]:
    """(events, customers, a few ids) of the events whose customer is not among ``customers``."""
    unknown = events.loc[~events["customer_id"].isin(customers), "customer_id"]
    ids = unknown.drop_duplicates()
    return len(unknown), len(ids), ids.head(3).tolist()


def _count(code: np.ndarray, mask: np.ndarray | None, n: int) -> np.ndarray:
    return np.bincount(code if mask is None else code[mask], minlength=n).astype(float)


def _counts(code: np.ndarray, age: np.ndarray, n: int, label: str) -> dict[str, np.ndarray]:
    return {f"{label}_{w}d": _count(code, age < w, n) for w in (SHORT, LONG)}


def _min_age(code: np.ndarray, age: np.ndarray, n: int) -> np.ndarray:
    """Per customer, the age of the latest event given (NaN for none)."""
    never = np.iinfo(age.dtype).max
    out = np.full(n, never, dtype=age.dtype)
    np.minimum.at(out, code, age)  # one dtype: numpy's fast path
    return np.where(out == never, np.nan, out)


def _latest(code: np.ndarray, age: np.ndarray, value: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the value and age of the latest event given (NaN, NaN for none); of several on the
    latest day, the last in the log's order."""
    order = np.lexsort((np.arange(len(code)), -age, code))  # by customer, then oldest to newest
    code, age, value = code[order], age[order], value[order]
    last = np.flatnonzero(np.r_[code[1:] != code[:-1], True]) if len(code) else np.zeros(0, dtype=int)
    values, ages = np.full(n, np.nan), np.full(n, np.nan)
    values[code[last]], ages[code[last]] = value[last], age[last]
    return values, ages


def _worst_recent(code: dict, age: dict, value: dict, n: int) -> np.ndarray:
    """Per customer, the worst survey answer of the last 90 days on a 0–1 scale (NPS / 10, (CSAT − 1) / 4)."""
    out = np.full(n, np.inf)
    for name, (low, high) in SCORED_KINDS.items():
        recent = age[name] < LONG
        np.minimum.at(out, code[name][recent], (value[name][recent] - low) / (high - low))
    out[np.isinf(out)] = np.nan
    return out


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, capped at 1 (opens of e-mails sent before the log began), NaN where nothing was sent."""
    return np.minimum(np.divide(numerator, denominator, out=np.full(len(numerator), np.nan), where=denominator > 0), 1.0)


def _email_rates(code: dict, age: dict, n: int) -> dict[str, np.ndarray]:
    """Open and click rates over the last 30 and 90 days, and the open rate's trend: the last 30 days' rate
    minus the rate of the 60 days before them."""
    sent, opened, clicked = ({w: _count(code[kind], age[kind] < w, n) for w in (SHORT, LONG)}
                             for kind in ("email_sent", "email_open", "email_click"))
    out = {f"email_open_rate_{w}d": _rate(opened[w], sent[w]) for w in (SHORT, LONG)}
    out |= {f"email_click_rate_{w}d": _rate(clicked[w], sent[w]) for w in (SHORT, LONG)}
    before = _rate(opened[LONG] - opened[SHORT], sent[LONG] - sent[SHORT])
    out["email_open_trend"] = out[f"email_open_rate_{SHORT}d"] - before
    return out


def event_coverage(events: pd.DataFrame, *, as_of: AsOf, customers: pd.Index) -> dict:
    """What the events up to ``as_of`` hold for ``customers``: per kind the events, the customers with at least
    one and their share (the eligibility report's lines), and the events of customers not among them."""
    seen = seen_events(events, as_of=as_of)
    known = seen["customer_id"].isin(customers)
    mine = seen.loc[known]
    kinds = {kind: {"events": int(len(rows)), "customers": int(rows["customer_id"].nunique()),
                    "share": float(rows["customer_id"].nunique() / max(len(customers), 1))}
             for kind, rows in mine.groupby("kind", sort=True)}
    n, k, examples = unknown_customers(seen, customers)
    return {"kinds": kinds, "unknown": {"events": n, "customers": k, "examples": examples}}
