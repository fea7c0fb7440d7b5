"""Shared one-pass preparation for the point-in-time feature families.

Everything here works on integer arrays: customer ids are encoded once, timestamps become
day numbers (days since 1970-01-01) once, and the distinct purchase days of every customer
come from a single sort of one integer key (``customer * span + day``). The feature families
(``rfm``, ``behaviour``, ``cohorts``, ``labels``) read the resulting :class:`History` and
aggregate with ``np.bincount``; nothing loops over customers in Python.

Conventions (shared by every feature family): purchases are rows with ``amount >= 0``, returns are
rows with ``amount < 0``; ``as_of`` names a calendar day and the whole day is included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

from churnclv.contract.columns import TRANSACTION_REQUIRED
from churnclv.contract.dates import AsOf, as_of_day

EPOCH = date(1970, 1, 1)

CUSTOMER_ID = "customer_id"
WINDOWS = (30, 90, 180, 365)
"""Trailing windows in days: window ``w`` holds days ``as_of - w < day <= as_of``."""


@dataclass(frozen=True)
class Encoded:
    """A transaction frame as integer arrays, independent of any as-of date.

    Attributes
    ----------
    frame : the original frame (never modified; optional columns are read from it), or None when the
        optional columns' codes are given in ``_columns`` (``features.online``).
    codes : int32 (int64 beyond 2**31 customers) per row, index into ``uniques``.
    uniques : distinct customer ids, in order of first appearance.
    day : int32 per row, day number (days since 1970-01-01, floored).
    amount : float64 per row; negative = return.
    """

    frame: pd.DataFrame | None
    codes: np.ndarray
    uniques: pd.Index
    day: np.ndarray
    amount: np.ndarray
    _columns: dict = field(default_factory=dict, repr=False, compare=False)

    def has(self, column: str) -> bool:
        """Whether the transactions hold an optional column (its codes given, or in ``frame``)."""
        return column in self._columns or (self.frame is not None and column in self.frame.columns)

    def column_codes(self, column: str) -> np.ndarray:
        """:func:`factorize` codes of an optional column over every row (-1 = missing), computed once."""
        if column not in self._columns:
            self._columns[column] = factorize(self.frame[column])[0]
        return self._columns[column]


@dataclass(frozen=True)
class Customers:
    """The customers with at least one purchase at or before the as-of day.

    ``ids`` is sorted and named ``customer_id``; ``rank[code]`` is a customer's position in
    ``ids`` (-1 for customers without a purchase by then). ``purchase`` and ``history`` are
    row masks: purchases at or before as-of, and all rows at or before as-of; ``p_codes`` are
    the customer codes of the purchase rows and ``p_rows`` the number of purchase rows of
    each customer (aligned with ``ids``).
    """

    as_of: int
    ids: pd.Index
    rank: np.ndarray
    purchase: np.ndarray
    history: np.ndarray
    p_codes: np.ndarray
    p_rows: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class History:
    """Purchases at or before the as-of day, by customer position (``0 .. n-1``).

    Row level (purchase rows): ``p_cust``, ``p_day``, ``p_amount``.
    Distinct purchase days, sorted by (customer, day): ``pair_cust``, ``pair_day``.
    Per customer: ``starts`` (first pair index), ``n_days`` (distinct purchase days),
    ``first_day`` and ``last_day`` (day numbers).
    """

    enc: Encoded
    cust: Customers
    p_cust: np.ndarray
    p_day: np.ndarray
    p_amount: np.ndarray
    pair_cust: np.ndarray
    pair_day: np.ndarray
    starts: np.ndarray
    n_days: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray

    @property
    def as_of(self) -> int:
        return self.cust.as_of

    @property
    def n(self) -> int:
        return self.cust.n

    @cached_property
    def spend_bands(self) -> np.ndarray:
        """(n, len(WINDOWS) + 1) purchase amount by band of days before as-of (see window_table)."""
        return window_table(self.p_cust, self.p_day, self.as_of, self.n, weights=self.p_amount)

    @cached_property
    def total_spend(self) -> np.ndarray:
        """Purchase amount at or before as-of, per customer."""
        return self.spend_bands.sum(axis=1)


def day_number(as_of: AsOf) -> int:
    """Day number (days since 1970-01-01) of the calendar day named by ``as_of`` (:func:`contract.dates.as_of_day`)."""
    return (as_of_day(as_of) - EPOCH).days


def day_numbers(timestamps: pd.Series) -> np.ndarray:
    """Day numbers (int32 days since 1970-01-01, floored) of tz-naive datetime64 values."""
    if not pd.api.types.is_datetime64_dtype(timestamps.dtype):
        raise TypeError(f"timestamp must be tz-naive datetime64, got dtype {timestamps.dtype}")
    values = timestamps.to_numpy()
    if np.isnat(values).any():
        raise ValueError(f"timestamp has {int(np.isnat(values).sum())} missing values")
    unit, count = np.datetime_data(values.dtype)
    per_day = int(np.timedelta64(1, "D") // np.timedelta64(count, unit))
    days = np.empty(len(values), dtype=np.int32)
    np.floor_divide(values.view(np.int64), per_day, out=days, casting="unsafe")  # no int64 temporary
    return days


def index_dtype(size: int) -> type[np.signedinteger]:
    """The narrowest of int32/int64 holding integers in ``[-size, size]``."""
    return np.int32 if size < 2**31 - 1 else np.int64


def combine(major: np.ndarray, minor: np.ndarray, width: int, n_major: int) -> np.ndarray:
    """``major * width + minor`` for ``0 <= major < n_major``, ``0 <= minor < width``, without overflow."""
    dtype = index_dtype(n_major * width)
    out = major.astype(dtype)
    out *= width
    out += minor
    return out


def _arrow_factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    """Codes (int32) and uniques of a pyarrow-backed string column without missing values."""
    if not _is_arrow_string(values):
        return None
    import pyarrow as pa  # present: pandas' "str" dtype is backed by it here
    import pyarrow.compute as pc

    arr = pa.array(values.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=arr.type)
    if arr.null_count:
        return None
    encoded = pc.dictionary_encode(arr)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return codes, pd.Index(pd.array(encoded.dictionary, dtype=values.dtype))


def _is_arrow_string(values: pd.Series | pd.Index) -> bool:
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def _fixed_width_bytes(values: pd.Series | pd.Index) -> np.ndarray | None:
    """The UTF-8 bytes of pyarrow-backed strings as an (n, width) uint8 view, when there is at least one,
    none is missing and all have the same byte length; else None."""
    if not (_is_arrow_string(values) and len(values)):
        return None
    import pyarrow as pa

    arr = pa.array(values.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        return None
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset: arr.offset + len(arr) + 1]
    width = int(offsets[1] - offsets[0])
    if width == 0 or int(offsets[-1] - offsets[0]) != width * len(arr) or (np.diff(offsets) != width).any():
        return None
    return np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]: offsets[-1]].reshape(len(arr), width)


def _numbered(values: pd.Series | pd.Index) -> tuple[tuple[bytes, int], np.ndarray] | None:
    """((prefix, width), numbers) of fixed-width ids made of one common prefix and then 1 to 18 ASCII digits
    ("C00012345" -> (b"C", 9), 12345): equal ids have equal numbers and ordered ids ordered numbers, and
    ids of two columns of the same prefix and width are equal where their numbers are. None for other ids."""
    data = _fixed_width_bytes(values)
    if data is None:
        return None
    n, width = data.shape
    head = data[0]
    prefix = width
    while prefix > 0 and 48 <= head[prefix - 1] <= 57:  # the first id's trailing digits
        prefix -= 1
    digits = width - prefix
    if digits == 0 or digits > 18 or (prefix and not (data[:, :prefix] == head[:prefix]).all()):
        return None
    number = np.zeros(n, dtype=np.int32 if digits <= 9 else np.int64)
    digit = np.empty(n, dtype=np.uint8)
    for j in range(prefix, width):
        np.subtract(data[:, j], 48, out=digit)  # wraps around below "0"
        if digit.max() > 9:
            return None
        number *= 10
        number += digit
    return (head[:prefix].tobytes(), width), number


def _numbered_factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    """:func:`factorize` of fixed-width numbered ids (see :func:`_numbered`) without hashing a string: a
    table over the numbers' range gives each its first row. None for other ids, or numbers spread wider
    than four per row (the table would outgrow the column)."""
    numbered = _numbered(values)
    if numbered is None:
        return None
    number = numbered[1]
    n = len(number)
    low = int(number.min())
    span = int(number.max()) - low + 1
    if span > 4 * n:
        return None
    dtype = index_dtype(max(n, span))
    number -= number.dtype.type(low)  # our own array: now the offset into the table
    offset = number.astype(dtype, copy=False)
    first = np.full(span, n, dtype=dtype)
    np.minimum.at(first, offset, np.arange(n, dtype=dtype))  # each number's first row
    is_first = np.zeros(n, dtype=bool)
    is_first[first[first < n]] = True
    rows = np.flatnonzero(is_first)  # the first rows, in order of appearance
    code_of = np.empty(span, dtype=dtype)
    code_of[offset[rows]] = np.arange(len(rows), dtype=dtype)
    return code_of[offset], pd.Index(values.array.take(rows))


def _numbered_positions(ids: pd.Index, values: pd.Series) -> np.ndarray | None:
    """:func:`positions` through a table over the numbers of numbered ids of one prefix and width
    (see :func:`_numbered`); None for other ids or a table larger than the two columns."""
    known, wanted = _numbered(ids), _numbered(values)
    if known is None or wanted is None or known[0] != wanted[0]:
        return None
    number, looked_up = known[1], wanted[1]
    low = int(number.min())
    span = int(number.max()) - low + 1
    if span > len(looked_up) + 4 * len(number):
        return None
    table = np.full(span + 1, -1, dtype=index_dtype(len(number)))  # the last entry: not among the ids
    table[number - number.dtype.type(low)] = np.arange(len(number))
    looked_up -= looked_up.dtype.type(low)  # our own array
    looked_up[(looked_up < 0) | (looked_up >= span)] = span
    return table[looked_up]


def positions(ids: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each of ``values`` among the distinct ``ids`` (-1 where it is not one of them), hashing each
    distinct value once (numbered ids such as "C00012345": no hashing)."""
    fast = _numbered_positions(ids, values)
    if fast is not None:
        return fast
    codes, uniques = factorize(values)
    where = pd.Index(ids).get_indexer(uniques).astype(index_dtype(len(ids)), copy=False)
    return np.where(codes >= 0, where[codes], -1) if len(where) else np.full(len(codes), -1, dtype=where.dtype)


def factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (int32, int64 beyond 2**31 values; -1 for missing) and uniques in order of first
    appearance, hashing once (numbered ids such as "C00012345": no hashing)."""
    fast = _numbered_factorize(values)
    if fast is None:
        fast = _arrow_factorize(values)
    if fast is not None:
        return fast
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), pd.Index(values.cat.categories)
    else:
        codes, uniques = pd.factorize(values)
    return codes.astype(index_dtype(len(uniques)), copy=False), pd.Index(uniques)


def encode(transactions: pd.DataFrame | Encoded) -> Encoded:
    """Encode a canonical transaction frame once (ids, day numbers, amounts); an :class:`Encoded` is
    returned as it is, so that features and labels at many cutoffs share one encoding."""
    if isinstance(transactions, Encoded):
        return transactions
    missing = [c for c in TRANSACTION_REQUIRED if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack required column(s) {missing}; have {list(transactions.columns)}")
    codes, uniques = factorize(transactions[CUSTOMER_ID])
    if len(codes) and codes.min() < 0:
        raise ValueError(f"customer_id has {int((codes < 0).sum())} missing values")
    amount = transactions["amount"].to_numpy(np.float64)
    return Encoded(transactions, codes, uniques, day_numbers(transactions["timestamp"]), amount)


def _fixed_width_sort_keys(ids: pd.Index) -> np.ndarray | None:
    """uint64 keys ordering pyarrow-backed ids like the strings, when they all have the same
    UTF-8 byte length and differ only in their last 8 bytes (e.g. "C00012345"); else None.

    Equal-length UTF-8 byte strings compare like their code points, so dropping the common
    leading bytes and reading the rest as one big-endian integer preserves the order.
    """
    data = _fixed_width_bytes(ids)
    if data is None:
        return None
    width = data.shape[1]
    varying = np.flatnonzero((data != data[0]).any(axis=0))
    first = int(varying[0]) if len(varying) else width
    if width - first > 8:
        return None
    padded = np.zeros((len(data), 8), dtype=np.uint8)
    padded[:, 8 - (width - first):] = data[:, first:]
    return padded.view(">u8").ravel().astype(np.uint64)


def argsort_ids(ids: pd.Index) -> np.ndarray:
    """Positions that sort ``ids`` ascending (integer sort for fixed-width string ids)."""
    keys = _fixed_width_sort_keys(ids)
    return np.asarray(ids.argsort()) if keys is None else np.argsort(keys, kind="stable")


def select(values: np.ndarray, mask: np.ndarray, everything: bool) -> np.ndarray:
    """``values[mask]``, or ``values`` itself (no copy) when the mask selects everything."""
    return values if everything else values[mask]


def customers(enc: Encoded, *, as_of: AsOf) -> Customers:
    """Customers with a purchase at or before ``as_of``, sorted by id."""
    day = day_number(as_of)
    history = enc.day <= day
    purchase = history & (enc.amount >= 0)
    p_codes = select(enc.codes, purchase, bool(purchase.all()))
    rows = np.bincount(p_codes, minlength=len(enc.uniques))
    present = np.flatnonzero(rows)
    ids = enc.uniques.take(present)
    order = argsort_ids(ids)
    rank = np.full(len(enc.uniques), -1, dtype=enc.codes.dtype)
    rank[present[order]] = np.arange(len(present))
    sorted_ids = pd.Index(ids.take(order), name=CUSTOMER_ID)
    return Customers(day, sorted_ids, rank, purchase, history, p_codes, rows[present[order]])


def weighted_sum(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """float64 sums of ``weights`` by ``index`` in ``0..n-1`` (``np.bincount``, also when empty)."""
    return np.bincount(index, weights=weights, minlength=n).astype(np.float64, copy=False)


def window_table(cust: np.ndarray, day: np.ndarray, as_of: int, n: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """(n, len(WINDOWS) + 1) counts or sums of rows by customer and band of days before as-of.

    Band 0 holds ``as_of - day < WINDOWS[0]``, band j ``WINDOWS[j-1] <= as_of - day < WINDOWS[j]``,
    the last band everything older; a cumulative sum over bands gives the trailing windows.
    """
    k = len(WINDOWS) + 1
    index = cust.astype(np.intp)  # bincount wants intp: build it in place, once
    index *= k
    for w in WINDOWS:
        index += day <= as_of - w
    table = np.bincount(index, minlength=n * k) if weights is None else weighted_sum(index, weights, n * k)
    return table.reshape(n, k)


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (one sort, no inverse)."""
    return distinct_of_sorted(np.sort(keys))


def distinct_of_sorted(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (a new array)."""
    if len(ordered) == 0:
        return ordered.copy()
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _day_pairs(p_cust: np.ndarray, p_day: np.ndarray, as_of: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (customer, day) pairs of purchase rows, sorted: (pair_cust, pair_day)."""
    d0 = int(p_day.min()) if len(p_day) else as_of
    span = as_of - d0 + 1
    dtype = index_dtype(n * span + abs(d0) + span)
    key = p_cust.astype(dtype)  # customer * span + (day - d0), built in place
    key *= span
    key += p_day
    key -= d0
    key.sort()  # ours: sorted in place, without a copy
    pairs = distinct_of_sorted(key)
    pair_cust = pairs // span
    pair_day = pair_cust * dtype(span)
    np.subtract(pairs, pair_day, out=pair_day)
    pair_day += d0
    return pair_cust.astype(p_cust.dtype, copy=False), pair_day.astype(np.int32, copy=False)


def _runs(sorted_values: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in a sorted array."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=np.intp)
    new = np.empty(len(sorted_values), dtype=bool)
    new[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new[1:])
    return np.flatnonzero(new)


def history(enc: Encoded, *, as_of: AsOf) -> History:
    """Purchases at or before ``as_of`` and each customer's distinct purchase days."""
    cust = customers(enc, as_of=as_of)
    everything = len(cust.p_codes) == len(enc.codes)
    p_cust = cust.rank[cust.p_codes]
    p_day = select(enc.day, cust.purchase, everything)
    p_amount = select(enc.amount, cust.purchase, everything)
    pair_cust, pair_day = _day_pairs(p_cust, p_day, cust.as_of, cust.n)
    starts = _runs(pair_cust)  # every customer 0..n-1 has at least one purchase day
    n_days = np.diff(starts, append=len(pair_cust))
    return History(
        enc, cust, p_cust, p_day, p_amount, pair_cust, pair_day,
        starts, n_days, pair_day[starts], pair_day[starts + n_days - 1],
    )


def per_customer_distinct(cust: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Number of distinct ``values`` (non-negative int codes) per customer position ``0..n-1``."""
    if len(values) == 0:
        return np.zeros(n, dtype=np.int64)
    width = int(values.max()) + 1
    if n * width < 2**62:
        pairs = unique_sorted(combine(cust, values, width, n))
        return np.bincount(pairs // width, minlength=n)
    order = np.lexsort((values, cust))
    c, v = cust[order], values[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (v[1:] != v[:-1])
    return np.bincount(c[new], minlength=n)
