"""The as-of day: one type (:class:`datetime.date`) from the command line to the HTTP answer.

An as-of day names a whole calendar day: a transaction at 23:59 on that day is seen, one at 00:00 the
next day is not. Every public function that takes an as-of day takes an :data:`AsOf` and converts it at
its edge, once, with :func:`as_of_day`; inside, ``features`` counts day numbers (days since 1970-01-01,
``features._prep.day_number``) and ``training`` compares ``pd.Timestamp`` midnights (what pandas date
arithmetic needs); what leaves a layer (metadata, tags, JSON, file metadata) is :func:`iso` text.
:func:`as_of_day` turns anything a user may type or a layer may hold into that date,
:func:`until` and :func:`on_or_before` are the one way "on or before the as-of day" is coded, and
:func:`iso` is the one way it is written down (metadata, tags, file metadata, JSON).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from churnclv.contract.errors import ChurnclvError


class AsOfError(ChurnclvError, ValueError):
    """An as-of value that does not name a calendar day."""


#: What a public function accepts as an as-of day: a date, or what :func:`as_of_day` reads as one.
AsOf = date | datetime | str | pd.Timestamp | np.datetime64

#: Two years, two names. The same season a year earlier is 52 weeks back, so weekdays line up (training's
#: season factor, judging window and seasonal cutoffs); an annual discount rate runs over calendar days.
SEASON_YEAR_DAYS = 364
DISCOUNT_YEAR_DAYS = 365.0


def as_of_day(value: date | datetime | str | pd.Timestamp | np.datetime64) -> date:
    """The calendar day named by ``value`` (a date, a 'YYYY-MM-DD' string, a time-zone naive timestamp)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise AsOfError(f"as_of must be a date written YYYY-MM-DD, not {value!r}") from None
    stamp = pd.Timestamp(value) if value is not None else pd.NaT
    if stamp is pd.NaT:
        raise AsOfError(f"as_of must be a date, not {value!r}")
    if stamp.tzinfo is not None:
        raise AsOfError(f"as_of must be time-zone naive like the transaction timestamps, not {value!r}")
    return stamp.date()


def iso(as_of: date | datetime | str | pd.Timestamp) -> str:
    """'YYYY-MM-DD' (four-digit year, also before year 1000)."""
    day = as_of_day(as_of)
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def day_end(as_of: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    """The first instant after the as-of day (rows strictly before it are on or before the day)."""
    return pd.Timestamp(as_of_day(as_of)) + pd.Timedelta(days=1)


def on_or_before(timestamps: pd.Series, as_of: date | datetime | str | pd.Timestamp) -> np.ndarray:
    """True for each timestamp on or before the as-of day (the whole day included)."""
    return (timestamps < day_end(as_of)).to_numpy()


def until(transactions: pd.DataFrame, as_of: date | datetime | str | pd.Timestamp) -> pd.DataFrame:
    """The rows of a transaction frame on or before the as-of day."""
    return transactions.loc[on_or_before(transactions["timestamp"], as_of)]
