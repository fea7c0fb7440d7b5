"""Readers, the transaction contract and the events contract.

Every transaction source (CSV, Parquet, the built-in ``"cdnow"`` log, a frame posted to the service)
goes through :func:`validate_transactions`, so a bad input gets the same clear message everywhere:
the column, how many rows, and a few examples. The report of dropped rows is written atomically by
:func:`contract.files.write_table`, where every writer of churnclv lives.
"""

from __future__ import annotations

import gzip
import importlib.resources
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from churnclv.contract import ChurnclvError, first_line, write_table
from churnclv.contract.columns import (
    TRANSACTION_OPTIONAL_NUMBER,
    TRANSACTION_OPTIONAL_TEXT,
)
from churnclv.features.events import SCORED_KINDS

#: Transaction dates outside these days are bad input (pandas' nanosecond timestamps end in 1677 and 2262).
FIRST_DAY, LAST_DAY = pd.Timestamp("1900-01-01"), pd.Timestamp("2199-12-31")
BadRows = Literal["fail", "drop"]
_EXAMPLES = 3


@dataclass(frozen=True)
class Problem:
    """One kind of bad row: which column, what is wrong, how many rows, a few examples."""

    column: str
    issue: str
    rows: np.ndarray = field(repr=False)
    examples: tuple = ()

    @property
    def count(self) -> int:
        return len(self.rows)

    def message(self) -> str:
        shown = ", ".join(
            f"row {r + 1}: {'(empty)' if v is None else repr(v)}" for r, v in zip(self.rows[:_EXAMPLES], self.examples)
        )
        return f"column '{self.column}': {self.count:,} row(s) {self.issue} (e.g. {shown})"


class TransactionsError(ChurnclvError, ValueError):
    """The transactions break the contract; ``problems`` lists each kind of bad row."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()):
        super().__init__(message)
        self.problems = problems


def _problem(values: pd.Series, column: str, mask: np.ndarray, issue: str) -> Problem | None:
    """A :class:`Problem` for the rows where ``mask`` is true (examples taken from ``values``), or None."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    return Problem(column, issue, rows, tuple(None if pd.isna(v) else v for v in values.iloc[rows[:_EXAMPLES]]))


class EventsError(TransactionsError):
    """The events break their contract; ``problems`` lists each kind of bad row."""


def _parse_ids(raw: pd.Series, column: str) -> tuple[pd.Series, Problem | None]:
    ids = raw.astype("str").str.strip()
    bad = ids.isna().to_numpy() | (ids == "").to_numpy()
    return ids, _problem(raw, column, bad, "have an empty id")


def _parse_timestamps(raw: pd.Series, date_format: str | None) -> tuple[pd.Series, list[Problem | None]]:
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        text = raw.astype("str").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format=date_format or "ISO8601")
        if date_format is None and parsed.isna().mean() > 0.5:  # not ISO: infer one format from the data
            with warnings.catch_warnings():  # "could not infer format": the bad rows are reported below
                warnings.simplefilter("ignore", UserWarning)
                parsed = pd.to_datetime(text, errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = parsed.isna().to_numpy()
    hint = f"do not parse as dates with format {date_format!r}" if date_format else "do not parse as dates"
    # Valid dates, but not of any transaction log (and past what nanosecond timestamps can hold).
    outside = ~bad & ~((parsed >= FIRST_DAY) & (parsed < LAST_DAY + pd.Timedelta(days=1))).to_numpy()
    problems = [_problem(raw, "timestamp", bad, hint),
                _problem(raw, "timestamp", outside, f"are outside {FIRST_DAY:%Y-%m-%d} .. {LAST_DAY:%Y-%m-%d}")]
    return parsed.mask(outside).astype("datetime64[ns]"), problems


#: A number written as money, as spreadsheets export it: a currency sign, thousands separators.
MONEY = r"^\s*(?P<sign>-?)\s*[$£€¥]?\s*(?P<sign2>-?)(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d*\.?\d+)\s*$"


def _money(raw: pd.Series) -> pd.Series:
    """Numbers written as money ("$1,234.50", "-£3.20", "€ 12") as floats; anything else NaN."""
    parts = raw.astype("str").str.extract(MONEY)
    negative = (parts["sign"] == "-") | (parts["sign2"] == "-")
    return pd.to_numeric(parts["number"].str.replace(",", ""), errors="coerce").where(~negative, lambda x: -x)


def _parse_numbers(raw: pd.Series, column: str, *, required: bool) -> tuple[pd.Series, Problem | None]:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    unparsed = numbers.isna().to_numpy() & raw.notna().to_numpy()
    if unparsed.any():  # the slower reading for the values plain numbers missed
        numbers[unparsed] = _money(raw[unparsed]).to_numpy()
    bad = ~np.isfinite(numbers.to_numpy())
    if not required:
        bad &= raw.notna().to_numpy()
    return numbers, _problem(raw, column, bad, "are not finite numbers")


def _duplicate_orders(raw: pd.DataFrame) -> Problem | None:
    """An order repeated whole — each of its distinct lines k times as often as in one copy, k ≥ 2 — is an
    order (or a file) loaded k times: the copies after the first are bad rows. Lines are compared on every
    column of the input, so an order's distinct line items (another product code, or just lines of the
    same amount beside different ones) are purchases, never duplicates."""
    if "order_id" not in raw:
        return None
    codes = pd.factorize(raw["order_id"], use_na_sentinel=False)[0]  # ids as integers: a third of duplicated()'s time
    shared = np.bincount(codes)[codes] > 1  # only orders of several rows can repeat
    if not shared.any():
        return None
    rows = raw.loc[shared]
    line = pd.Series(rows.groupby(list(rows.columns), dropna=False, sort=False).ngroup().to_numpy())
    order = pd.Series(rows["order_id"].to_numpy())
    count = line.map(line.value_counts())
    lines = pd.DataFrame({"order": order, "line": line, "count": count}).drop_duplicates("line")
    lines = lines[lines.groupby("order")["count"].transform("min") >= 2]  # orders with every line repeated
    copies = order.map(lines.groupby("order")["count"].agg(np.gcd.reduce)).fillna(1).astype(np.int64)  # k
    extra = (line.groupby(line).cumcount() >= count // copies).to_numpy()
    mask = np.zeros(len(raw), dtype=bool)
    mask[np.flatnonzero(shared)[extra]] = True
    return _problem(raw["order_id"], "order_id", mask, "repeat an earlier copy of the whole order (loaded twice?)")


def _rename(frame: pd.DataFrame, column_map: dict[str, str], *, error: type[TransactionsError] = TransactionsError,
            hint: str = "load_transactions") -> pd.DataFrame:
    """Map the user's column names onto the canonical ones (``column_map``: canonical -> the input's) and check
    that every one of them is there."""
    renamed = frame.rename(columns={src: dst for dst, src in column_map.items() if src and src != dst})
    missing = [c for c in column_map if c not in renamed.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:12])) or "none"
        options = [f"{c.removesuffix('_id')}_col" for c in missing]
        raise error(
            f"missing required column(s) {', '.join(repr(c) for c in missing)}; the input has: {have}.\n"
            f"Map your names with {', '.join('--' + o.replace('_', '-') for o in options)}"
            f" (Python: {hint}(..., {options[0]}=...))."
        )
    return renamed


def _settle(out: pd.DataFrame, raw: pd.DataFrame, problems: list[Problem | None], *, bad_rows: BadRows,
            noun: str, error: type[TransactionsError], option: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``out`` that have no problem and the rejected ones; with ``bad_rows="fail"`` any problem
    raises ``error`` listing each kind of bad row (``noun``: what the rows are, ``option``: the flag that drops)."""
    found = tuple(p for p in problems if p is not None)
    if found and bad_rows == "fail":
        lines = "\n".join(f"  - {p.message()}" for p in found)
        raise error(f"{len(found)} problem(s) in the {noun}; nothing was written:\n{lines}\n"
                    f"Fix the input, or pass {option} drop to drop these rows with a written report.", found)
    rejected = _rejected(found, raw)
    keep = np.ones(len(out), dtype=bool)
    keep[rejected["row"].to_numpy(dtype=np.int64) - 1] = False  # a row may be listed once per problem
    clean = out.loc[keep].reset_index(drop=True)
    if clean.empty:
        raise error(f"every one of the {len(out):,} rows is bad; nothing is left to use", found)
    return clean, rejected


def validate_transactions(
    frame: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    date_format: str | None = None,
    bad_rows: BadRows = "fail",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check a raw table against the transaction contract and return it in canonical form.

    Parameters
    ----------
    frame : raw table, any dtypes; extra columns are ignored.
    customer_col, timestamp_col, amount_col : the input's names for the required columns; ``amount_col``
        may also be two columns multiplied, ``"Quantity*Price"`` (a line's quantity and unit price).
    date_format : strftime format of the timestamps; None infers it per value (ISO 8601 and the like).
    bad_rows : "fail" raises :class:`TransactionsError` listing every problem; "drop" removes the
        bad rows and returns them, with the reason, as the second element.

    Returns
    -------
    (transactions, rejected) : the canonical frame (customer_id str, timestamp datetime64[ns],
        amount float64 [, order_id, quantity, channel, category]) and the rejected rows
        (``row`` = 1-based data row, the header not counted, ``column``, ``problem``, ``value``).
    """
    if bad_rows not in ("fail", "drop"):
        raise ValueError(f"bad_rows must be 'fail' or 'drop', not {bad_rows!r}")
    factors = amount_factors(amount_col, frame.columns)
    raw = _rename(frame, {"customer_id": customer_col, "timestamp": timestamp_col} |
                  ({"amount": amount_col} if factors is None else {}))
    if raw.empty:
        raise TransactionsError("the input holds no transactions (0 rows)")
    columns, problems = _parse_columns(raw, date_format, factors)
    problems.append(_duplicate_orders(raw))
    return _settle(pd.DataFrame(columns), raw, problems, bad_rows=bad_rows, noun="transactions",
                   error=TransactionsError, option="--bad-rows")


def amount_factors(amount_col: str, names) -> tuple[str, str] | None:
    """The two columns of an amount written ``"Quantity*Price"`` (None when ``amount_col`` names one column:
    an input column of that name wins); a ``*`` without a name on each side is an error."""
    have = list(map(str, names))
    if amount_col in have or "*" not in amount_col:
        return None
    factors = tuple(part.strip() for part in amount_col.split("*"))
    if len(factors) != 2 or not all(factors):
        raise TransactionsError(f"amount column {amount_col!r}: write one column, or two multiplied "
                                "(e.g. 'Quantity*Price')")
    missing = [f for f in factors if f not in have]
    if missing:
        raise TransactionsError(f"amount {amount_col!r}: missing column(s) {', '.join(map(repr, missing))}; "
                                f"the input has: {', '.join(have[:12]) or 'none'}")
    return factors


def _parse_amounts(raw: pd.DataFrame, factors: tuple[str, str] | None) -> tuple[pd.Series, list[Problem | None]]:
    """The amount column, or the product of its two ``factors`` (a bad value is named by its own column)."""
    if factors is None:
        amounts, problem = _parse_numbers(raw["amount"], "amount", required=True)
        return amounts, [problem]
    (first, p_first), (second, p_second) = (_parse_numbers(raw[c], c, required=True) for c in factors)
    return first * second, [p_first, p_second]


def _parse_columns(raw: pd.DataFrame, date_format: str | None,
                   factors: tuple[str, str] | None = None) -> tuple[dict, list]:
    ids, p_id = _parse_ids(raw["customer_id"], "customer_id")
    stamps, p_ts = _parse_timestamps(raw["timestamp"], date_format)
    amounts, p_amt = _parse_amounts(raw, factors)
    columns = {"customer_id": ids, "timestamp": stamps, "amount": amounts}
    problems = [p_id, *p_ts, *p_amt]
    for name in TRANSACTION_OPTIONAL_TEXT:
        if name in raw:
            columns[name] = raw[name].astype("str").str.strip()
    for name in TRANSACTION_OPTIONAL_NUMBER:
        if name in raw:
            columns[name], p = _parse_numbers(raw[name], name, required=False)
            problems.append(p)
    return columns, problems


def _rejected(problems: tuple[Problem, ...], raw: pd.DataFrame) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {
                "row": p.rows + 1,
                "column": p.column,
                "problem": p.issue,
                "value": raw[p.column if p.column in raw else "customer_id"].iloc[p.rows].astype("str").to_numpy(),
            }
        )
        for p in problems
    ]
    if not parts:
        return pd.DataFrame({"row": pd.Series(dtype="int64"), "column": [], "problem": [], "value": []})
    return pd.concat(parts, ignore_index=True).sort_values(["row", "column"], ignore_index=True)


def read_cdnow() -> pd.DataFrame:
    """The CDNOW master log shipped inside lifetimes, raw: customer_id, date, number_of_cds, dollar_value.

    69,659 transactions of 23,570 customers, 1997-01-01 to 1998-06-30 (Fader & Hardie's data set).
    """
    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
    with importlib.resources.as_file(path) as local:
        return pd.read_csv(
            local,
            sep=r"\s+",
            skiprows=1,
            header=None,
            names=["customer_id", "date", "number_of_cds", "dollar_value"],
            dtype={"customer_id": "str", "date": "str"},
        )


def _delimiter(path: Path) -> str:
    """The header line's most frequent of , ; tab | (a European ';' export reads as well as a ',' one)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _read_csv(path: Path) -> pd.DataFrame:
    """Every column as text (the contract parses them). pyarrow's reader when it takes the file: the same
    frame, several times faster and lighter at millions of rows (issue 11); pandas' own
    reader otherwise (ragged rows, invalid UTF-8, ...), so a file pyarrow refuses reads, or fails with the
    message, as before."""
    options = dict(sep=_delimiter(path), dtype="str", keep_default_na=False, na_values=[""])
    try:
        return pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - any refusal: pandas' reader decides, with its own messages
        return pd.read_csv(path, **options)


def _read_table(path: Path, error: type[TransactionsError] = TransactionsError) -> pd.DataFrame:
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.exists():
        raise error(f"no such file: {path}")
    if path.is_dir():
        raise error(f"{path} is a folder; give a CSV or Parquet file")
    try:
        if suffixes.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if suffixes.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            return _read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise error(f"{path} is not a readable {path.suffix or 'table'} file: {first_line(exc)}") from None
    raise error(f"{path}: unknown file type {path.suffix!r}; use .csv, .csv.gz, .tsv or .parquet")


def load_transactions(
    source: str | os.PathLike | pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    date_format: str | None = None,
    bad_rows: BadRows = "fail",
    report_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Read transactions from a CSV/Parquet path, ``"cdnow"``, or a frame, validated and canonical.

    With ``bad_rows="drop"`` a ``report_path`` is required: the dropped rows and why are written
    there (CSV), so that nothing is dropped silently.
    """
    if bad_rows == "drop" and report_path is None:
        raise ValueError("bad_rows='drop' needs report_path= for the report of dropped rows")
    if isinstance(source, pd.DataFrame):
        raw = source
    elif str(source).lower() == "cdnow":
        raw, customer_col, timestamp_col, amount_col = read_cdnow(), "customer_id", "date", "dollar_value"
        raw = raw.rename(columns={"number_of_cds": "quantity"})
        date_format = "%Y%m%d"
    else:
        raw = _read_table(Path(source))
    clean, rejected = validate_transactions(
        raw,
        customer_col=customer_col,
        timestamp_col=timestamp_col,
        amount_col=amount_col,
        date_format=date_format,
        bad_rows=bad_rows,
    )
    if report_path is not None:
        write_table(rejected, report_path)
    return clean


def validate_events(
    frame: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    kind_col: str = "kind",
    value_col: str = "value",
    date_format: str | None = None,
    bad_rows: BadRows = "fail",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check a raw table of events (touchpoints: survey answers, support contacts, e-mails, visits) against
    the events contract and return it in canonical form, as :func:`validate_transactions` does.

    Columns: ``customer_id``, ``timestamp`` (parsed as the transactions' are), ``kind`` (lower case; any
    text: the kinds of :data:`features.events.EVENT_KINDS` become features, any other is counted) and
    ``value`` (required for the scored kinds, :data:`features.events.SCORED_KINDS`: an NPS answer 0–10, a
    CSAT answer 1–5; read for no other kind, so it may be absent). Returns (events, rejected rows).
    """
    if bad_rows not in ("fail", "drop"):
        raise ValueError(f"bad_rows must be 'fail' or 'drop', not {bad_rows!r}")
    if value_col not in frame.columns:
        frame = frame.assign(**{value_col: np.nan})
    raw = _rename(frame, {"customer_id": customer_col, "timestamp": timestamp_col, "kind": kind_col,
                          "value": value_col}, error=EventsError, hint="load_events")
    if raw.empty:
        raise EventsError("the input holds no events (0 rows)")
    ids, p_id = _parse_ids(raw["customer_id"], "customer_id")
    stamps, p_ts = _parse_timestamps(raw["timestamp"], date_format)
    kinds = raw["kind"].astype("str").str.strip().str.lower().where(raw["kind"].notna(), "")
    values = pd.to_numeric(raw["value"], errors="coerce").astype("float64")
    problems = [p_id, *p_ts, _problem(raw["kind"], "kind", (kinds == "").to_numpy(), "have an empty kind")]
    for kind, (low, high) in SCORED_KINDS.items():
        rows = (kinds == kind).to_numpy()
        bad = rows & ~((values >= low) & (values <= high)).to_numpy()
        problems.append(_problem(raw["value"], "value", bad, f"of kind '{kind}' are not an answer from {low} to {high}"))
    out = pd.DataFrame({"customer_id": ids, "timestamp": stamps, "kind": kinds, "value": values})
    return _settle(out, raw, problems, bad_rows=bad_rows, noun="events", error=EventsError, option="--bad-rows")


def load_events(
    source: str | os.PathLike | pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    kind_col: str = "kind",
    value_col: str = "value",
    date_format: str | None = None,
    bad_rows: BadRows = "fail",
    report_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Read events from a CSV/Parquet path or a frame, validated and canonical (:func:`validate_events`);
    the customer and timestamp columns are mapped as the transactions' are. With ``bad_rows="drop"`` the
    dropped rows and why are written to ``report_path`` (CSV)."""
    if bad_rows == "drop" and report_path is None:
        raise ValueError("bad_rows='drop' needs report_path= for the report of dropped rows")
    raw = source if isinstance(source, pd.DataFrame) else _read_table(Path(source), EventsError)
    clean, rejected = validate_events(raw, customer_col=customer_col, timestamp_col=timestamp_col, kind_col=kind_col,
                                      value_col=value_col, date_format=date_format, bad_rows=bad_rows)
    if report_path is not None:
        write_table(rejected, report_path)
    return clean
