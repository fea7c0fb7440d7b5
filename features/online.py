"""A posted history of a few customers, encoded without the frame machinery (the service's fast path).

:func:`encode_posted` turns the raw columns of a handful of posted rows (a CRM's call at checkout: one
customer's ~20 transactions) straight into the :class:`~churnclv.features._prep.Encoded` arrays that
:func:`build_features` reads, so the features come from the very functions of the batch path, on the
same arrays in the same row order: equal to the last digit (tests/features/test_online.py).

It takes only rows the transaction contract (:func:`validate_transactions`) would accept unchanged: ids
and texts without surrounding blanks, finite numbers, naive ISO 8601 dates between 1900 and 2199, no
whole line repeated where orders are given. For anything else it returns None, and the caller goes the
contract's way, which cleans what can be cleaned and names every problem.

:func:`events_posted` does the same for posted touchpoints: plain rows become the canonical events frame
that the events contract (:func:`validate_events`) would return for them, equal to the last digit
(tests/features/test_online_events.py); anything else is None, and the contract judges it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from churnclv.contract.columns import TRANSACTION_OPTIONAL_NUMBER, TRANSACTION_OPTIONAL_TEXT
from churnclv.features._prep import EPOCH, Encoded
from churnclv.features.events import SCORED_KINDS
from churnclv.features.io import FIRST_DAY, LAST_DAY

#: A naive ISO 8601 date or date-time, as pandas' "ISO8601" format and ``datetime.fromisoformat`` both read it.
PLAIN_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")
_YEARS = range(FIRST_DAY.year, LAST_DAY.year + 1)  # the contract's days: whole years


def _text(value: Any) -> str | None:
    """A plain id or text (an int as its digits), or None if the contract would have to clean it."""
    if type(value) is int:
        return str(value)
    if type(value) is str and value and value == value.strip():
        return value
    return None


def _moment(value: Any) -> datetime | None:
    """A plain timestamp within the contract's years, or None."""
    if type(value) is not str or PLAIN_TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:  # e.g. 2025-02-30
        return None
    return moment if moment.year in _YEARS else None


def _day(value: Any) -> int | None:
    """The day number of a plain timestamp within the contract's years, or None."""
    moment = _moment(value)
    return None if moment is None else (moment.date() - EPOCH).days


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (float, int) and math.isfinite(value) else None


def _codes(values: Sequence[str | None]) -> np.ndarray:
    """Codes by first appearance, -1 for None (only equality matters to the features)."""
    seen: dict[str, int] = {}
    return np.fromiter((-1 if v is None else seen.setdefault(v, len(seen)) for v in values), np.int32, len(values))


def _optional_text(values: Sequence[Any]) -> list[str | None] | None:
    out = [None if v is None else _text(v) for v in values]
    return None if any(o is None and v is not None for o, v in zip(out, values)) else out


def encode_posted(columns: Mapping[str, Sequence[Any]]) -> Encoded | None:
    """The :class:`Encoded` arrays of posted rows, or None unless every row is plain (see the module).

    ``columns`` maps the contract's column names to one raw value per row (None = not given), as JSON
    gives them: ``customer_id``, ``timestamp``, ``amount`` and any of order_id, channel, category, quantity.
    """
    ids = [_text(v) for v in columns["customer_id"]]
    days = [_day(v) for v in columns["timestamp"]]
    amounts = [_number(v) for v in columns["amount"]]
    if None in ids or None in days or None in amounts:
        return None
    given = {name: values for name in (*TRANSACTION_OPTIONAL_TEXT, *TRANSACTION_OPTIONAL_NUMBER)
             if (values := columns.get(name)) is not None and any(v is not None for v in values)}
    if any(v is not None and _number(v) is None for name in TRANSACTION_OPTIONAL_NUMBER for v in given.get(name, ())):
        return None
    texts = {name: _optional_text(given[name]) for name in TRANSACTION_OPTIONAL_TEXT if name in given}
    if any(t is None for t in texts.values()):
        return None
    required = (columns["customer_id"], columns["timestamp"], columns["amount"])
    if "order_id" in given and len(set(zip(*required, *given.values()))) < len(ids):
        return None  # a whole line repeated: maybe an order loaded twice, which the contract judges
    codes = _codes(ids)
    uniques = pd.Index(list(dict.fromkeys(ids)), dtype="str")
    return Encoded(None, codes, uniques, np.array(days, dtype=np.int32), np.array(amounts, dtype=np.float64),
                   _columns={name: _codes(values) for name, values in texts.items()})


def _kind(value: Any) -> str | None:
    """A kind as the contract writes it (stripped, lower case, not empty), or None."""
    return value if type(value) is str and value and value == value.strip().lower() else None


def _answer(kind: str, value: Any) -> float | None:
    """A plain value (NaN for none), or None if the contract would clean it or reject it (a scored kind's
    answer outside its range)."""
    number = math.nan if value is None else _number(value)
    if number is None or (kind in SCORED_KINDS and not SCORED_KINDS[kind][0] <= number <= SCORED_KINDS[kind][1]):
        return None
    return number


def events_posted(columns: Mapping[str, Sequence[Any]]) -> pd.DataFrame | None:
    """The canonical events of posted rows (what :func:`validate_events` returns for them), or None unless every
    row is plain: an id and a kind as the contract writes them, a plain timestamp, a finite number or nothing
    as the value (an answer in range for nps and csat).

    ``columns`` maps ``customer_id``, ``timestamp``, ``kind`` and ``value`` to one raw value per row (None =
    not given), as JSON gives them.
    """
    ids = [_text(v) for v in columns["customer_id"]]
    moments = [_moment(v) for v in columns["timestamp"]]
    kinds = [_kind(v) for v in columns["kind"]]
    if None in ids or None in moments or None in kinds:
        return None
    values = [_answer(k, v) for k, v in zip(kinds, columns["value"])]
    if None in values:
        return None
    return pd.DataFrame({"customer_id": pd.Series(ids, dtype="str"),
                         "timestamp": pd.Series(np.array(moments, dtype="datetime64[ns]")),
                         "kind": pd.Series(kinds, dtype="str"), "value": pd.Series(values, dtype="float64")})


def rows_until(enc: Encoded, as_of: date) -> int:
    """Rows (purchases and returns) on or before the as-of day."""
    return int((enc.day <= (as_of - EPOCH).days).sum())
