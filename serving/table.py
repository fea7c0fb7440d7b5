"""The batch score table as the service holds it: read once from the file, then looked up by customer id.

:func:`load_score_table` reads a table written by ``churnclv score`` into column arrays with an
id -> row index and the prioritisation ranking (:mod:`serving.ranking`); :func:`lookup` and
:func:`score_rows` (or the rows' texts made once, :class:`RowTexts`) answer ``/score``; :func:`prioritised` formats the rows of ``/prioritise``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnclv.contract.columns import SCORE_COLUMNS, SCORE_INTERVALS, SCORE_NUMBERS, SCORE_TEXTS
from churnclv.contract.dates import AsOfError, iso
from churnclv.scoring.intervals import VALUE_DRAWS_COLUMN
from churnclv.scoring.scores import metadata_of
from churnclv.serving.errors import ApiError
from churnclv.serving.ranking import Plan, Ranking, build_ranking

SCORE_HINT = "write one first: churnclv score --transactions <file> [--explain]"
NO_DRIVERS = ("the score table has no drivers: it was written without --explain "
              "(rescore with churnclv score --transactions <file> --explain)")


@dataclass(frozen=True)
class Draws:
    """The score table's values per parameter draw (:data:`scoring.intervals.VALUE_DRAWS_COLUMN`), for how sure
    each place on a list is (:func:`serving.ranking.membership`)."""

    slots: np.ndarray  # int64 per table row: its row of ``factors``, -1 where the table keeps none
    factors: np.ndarray  # float64, kept customers x draws: value at risk under the draw / the point value at risk

    @property
    def kept(self) -> int:
        return len(self.factors)

    @property
    def count(self) -> int:
        return self.factors.shape[1]


#: Lookups of up to this many ids probe one id at a time.
FEW_IDS = 8
#: Ids up to this many characters are also kept as fixed-width ASCII text (a byte a character) for the lookups.
MAX_TEXT_WIDTH = 24


class IdIndex:
    """Customer id -> row position of a score table, as numpy arrays: the ids' hashes in buckets (by their low
    bits, about two buckets per id), each match confirmed on the id itself.

    A lookup of 100 ids probes the arrays in a few vectorised steps: in a loop of its own ~40 us, against ~75 us
    for a dict of a million ids, whose probes are one cache and TLB miss after another; and it holds ~30 MB for a
    million 8-character ids, not ~100 MB. (The plain /score path probes :class:`RowTexts`' dict instead.)"""

    def __init__(self, ids: np.ndarray):
        self.ids = ids  # object array of str
        listed = ids.tolist()
        hashes = np.fromiter(map(hash, listed), np.int64, len(ids))
        self._mask = (1 << max(4, int(len(ids)).bit_length() + 1)) - 1
        slots = hashes & self._mask
        order = np.argsort(slots, kind="stable")
        self._hashes, self._rows = hashes[order], order.astype(np.int32 if len(ids) < 2**31 else np.int64)
        self._starts = np.searchsorted(slots[order], np.arange(self._mask + 2)).astype(self._rows.dtype)
        self.unique = len(np.unique(hashes)) == len(ids) or len(set(listed)) == len(ids)
        # the ids again as one block of fixed-width ASCII text, compared without touching a million str objects;
        # not for long ids (memory), other characters, nor ids with NUL, which numpy's text drops at the end
        widest = max(map(len, listed), default=0)
        plain = widest <= MAX_TEXT_WIDTH and all(map(str.isascii, listed)) and not any("\x00" in c for c in listed)
        self._texts = np.asarray(ids, dtype=f"S{max(widest, 1)}") if plain else None
        # a wanted id as text one character wider: a longer id cut to this width still differs from them all
        self._wanted_text = f"S{max(widest, 1) + 1}"

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, wanted: Sequence[str]) -> np.ndarray:
        """The row position of each of ``wanted`` (int64), -1 for an id not in the table."""
        if len(wanted) <= FEW_IDS:  # a few: one at a time beats a dozen numpy calls
            return np.fromiter(map(self._position, wanted), np.int64, len(wanted))
        h = np.fromiter(map(hash, wanted), np.int64, len(wanted))
        slot = h & self._mask
        start, end = self._starts[slot], self._starts[slot + 1]
        count = end - start
        owner = np.repeat(np.arange(len(wanted)), count)  # every entry of every probed bucket, by query
        entry = np.arange(len(owner)) + np.repeat(end - np.cumsum(count), count)
        hit = self._hashes[entry] == h[owner]
        owner, rows = owner[hit], self._rows[entry[hit]]
        equal = self._equal_texts(rows, wanted, owner)
        if equal is None:
            equal = self.ids[rows] == np.asarray(wanted, dtype=object)[owner]
        out = np.full(len(wanted), -1, dtype=np.int64)
        out[owner[equal]] = rows[equal]
        return out

    def _equal_texts(self, rows: np.ndarray, wanted: Sequence[str], owner: np.ndarray) -> np.ndarray | None:
        """Whether the table's id at each of ``rows`` is ``wanted[owner]``, compared as ASCII text; None when either
        side cannot be (then they are compared as objects)."""
        joined = "".join(wanted)
        if self._texts is None or "\x00" in joined or not joined.isascii():
            return None
        return self._texts[rows] == np.array(wanted, dtype=self._wanted_text)[owner]

    def _position(self, cid: str) -> int:
        h = hash(cid)
        slot = h & self._mask
        for entry in range(int(self._starts[slot]), int(self._starts[slot + 1])):
            if self._hashes[entry] == h and self.ids[row := int(self._rows[entry])] == cid:
                return row
        return -1

    def get(self, cid: str, default: int | None = None) -> int | None:
        position = self._position(cid)
        return default if position < 0 else position

    def __contains__(self, cid: object) -> bool:
        return isinstance(cid, str) and self.get(cid) is not None

    def __getitem__(self, cid: str) -> int:
        position = self.get(cid)
        if position is None:
            raise KeyError(cid)
        return position


@dataclass(frozen=True)
class ScoreTable:
    """The batch score table as column arrays, with an id -> row index and the prioritisation ranking."""

    path: str
    fingerprint: tuple
    attrs: dict
    ids: np.ndarray  # object array of str
    index: IdIndex  # customer_id -> row position
    numbers: dict  # column -> float64 array
    texts: dict  # column -> object array (few distinct strings, shared)
    drivers: pa.Array | None  # JSON text per row, kept in Arrow memory
    ranking: Ranking = field(repr=False)
    draws: Draws | None = field(default=None, repr=False)  # values per parameter draw (tables before them: None)

    @cached_property
    def as_of(self) -> str:
        return day_text(self.attrs.get("as_of"))

    @cached_property
    def model_version(self) -> str:
        return str(self.attrs.get("model_version", "unknown"))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def row_texts(self) -> RowTexts:
        """Every row's answer as JSON text by id (:class:`RowTexts`); made once (~3.5 s and ~480 bytes a customer at
        a million), by :mod:`serving.state` before the table is served."""
        return RowTexts.of(self)

    @cached_property
    def contactable(self) -> list[str]:
        """Segments whose recommended action is a touchpoint (the policy says no_contact for the rest)."""
        contact = self.texts["recommended_action"] != "no_contact"
        return sorted(set(self.texts["segment"][contact].tolist()))


def day_text(value: object) -> str:
    """A day as YYYY-MM-DD (:func:`contract.dates.iso`, four-digit years), or the value as text if it is not one."""
    if value is None:
        return "unknown"
    try:
        return iso(value)
    except (AsOfError, ValueError, TypeError):
        return str(value)


def file_fingerprint(path: Path) -> tuple | None:
    """(inode, size, mtime in ns) of a file, or None when it is missing: cheap change detection."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read_arrow(path: Path) -> tuple[pa.Table, dict]:
    if path.suffix.lower() in (".csv", ".gz"):
        frame = pd.read_csv(path, dtype={"customer_id": "str", **dict.fromkeys(SCORE_TEXTS, "str")})
        return pa.Table.from_pandas(frame, preserve_index=False), {}
    table = pq.read_table(path)
    return table, metadata_of(table.schema.metadata or {}, path)


def _texts(column: pa.ChunkedArray) -> np.ndarray:
    """A text column with few distinct values as an object array sharing one str per value."""
    encoded = column.combine_chunks().dictionary_encode()
    names = np.asarray(encoded.dictionary.to_pylist() + [""], dtype=object)
    return names[encoded.indices.fill_null(len(names) - 1).to_numpy(zero_copy_only=False)]


def load_score_table(path: Path) -> ScoreTable:
    """Read and index a score table written by ``churnclv score`` (Parquet, ``attrs`` in its metadata).

    Raises ``ValueError`` with a message for the user when the file is not a usable score table.
    """
    fingerprint = file_fingerprint(path)
    if fingerprint is None:
        raise FileNotFoundError(f"no score table at {path}: {SCORE_HINT}")
    table, attrs = _read_arrow(path)
    missing = [c for c in SCORE_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a score table: no column(s) {', '.join(missing)}; {SCORE_HINT}")
    column = table.column("customer_id").cast(pa.string())
    ids = np.asarray(column.to_pylist(), dtype=object)
    index = IdIndex(ids)
    if not index.unique or column.null_count:
        raise ValueError(f"{path}: customer_id must be unique and non-empty in a score table")
    numbers = {c: table.column(c).cast(pa.float64()).to_numpy() for c in SCORE_NUMBERS}
    numbers |= {c: table.column(c).cast(pa.float64()).to_numpy() for c in SCORE_INTERVALS  # tables before them: none
                if c in table.column_names}
    texts = {c: _texts(table.column(c).cast(pa.string())) for c in SCORE_TEXTS}
    drivers = table.column("drivers").cast(pa.string()).combine_chunks() if "drivers" in table.column_names else None
    return ScoreTable(str(path), fingerprint, attrs, ids, index, numbers, texts, drivers,
                      build_ranking(numbers["value_at_risk"], texts["segment"]),
                      read_draws(table, numbers["value_at_risk"]))


def read_draws(table: pa.Table, value_at_risk: np.ndarray) -> Draws | None:
    """The table's values per parameter draw as factors of the point value at risk; None when it has none (a
    table written before them, a CSV, or lists of unequal lengths)."""
    if VALUE_DRAWS_COLUMN not in table.column_names:
        return None
    column = table.column(VALUE_DRAWS_COLUMN).combine_chunks()
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        return None
    rows = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
    kept = column.filter(column.is_valid())
    lengths = kept.value_lengths().to_numpy(zero_copy_only=False)
    if not len(rows) or lengths.min() != lengths.max() or lengths[0] == 0:
        return None
    values = kept.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False).reshape(len(rows), int(lengths[0]))
    point = value_at_risk[rows][:, None]
    factors = np.divide(values, point, out=np.ones_like(values), where=np.abs(point) > 1e-12)
    slots = np.full(len(value_at_risk), -1, dtype=np.int64)
    slots[rows] = np.arange(len(rows))
    return Draws(slots, np.nan_to_num(factors, nan=1.0, posinf=1.0, neginf=1.0))


def lookup(table: ScoreTable, customer_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Row positions of the known ids (request order, each once) and the unknown ids, apart."""
    wanted = list(dict.fromkeys(customer_ids))
    positions = table.index.positions(wanted)
    known = positions >= 0
    if known.all():
        return positions, []
    return positions[known], [c for c, k in zip(wanted, known.tolist()) if not k]


#: The fields of an answer's customer (:class:`serving.schemas.CustomerScore`), in its order.
ROW_FIELDS = ("customer_id", *SCORE_NUMBERS, *SCORE_TEXTS, *SCORE_INTERVALS, "drivers")


def score_rows(table: ScoreTable, positions: np.ndarray, *, explain: bool = False) -> list[dict]:
    """The score-table rows at ``positions`` as the answers give them (:func:`rows_of`): None where the table has no
    interval columns and for ``drivers`` unless asked (and present)."""
    columns = {"customer_id": table.ids[positions], **{c: table.texts[c][positions] for c in SCORE_TEXTS},
               **{c: values[positions] for c, values in table.numbers.items()}}
    if explain and table.drivers is not None:
        texts = table.drivers.take(pa.array(positions, type=pa.int64())).to_pylist()
        columns["drivers"] = [json.loads(t) if t else None for t in texts]
    return rows_of(columns)


def rows_of(columns: Mapping[str, Any]) -> list[dict]:
    """Scored columns (arrays or lists: a score table's, or :meth:`~scoring.bundle.ChurnCLVBundle.score_values`) as
    one dict of plain Python values per customer, every field of the answer's
    :class:`serving.schemas.CustomerScore` in its order (None for a column not given). Plain values, ready for JSON
    (:mod:`serving.lane`)."""
    none = [None] * len(columns["customer_id"])
    values = [none if c not in columns else columns[c] if isinstance(columns[c], list) else columns[c].tolist()
              for c in ROW_FIELDS]
    return list(map(dict, map(zip, repeat(ROW_FIELDS), zip(*values))))


#: One answer row's JSON text with a ``%s`` for each field's value (:data:`ROW_FIELDS`, in order).
ROW_TEMPLATE = ("{" + ",".join(f'"{f}":%s' for f in ROW_FIELDS) + "}").encode()


@dataclass(frozen=True)
class RowTexts:
    """Each customer's answer row as the JSON text of :func:`score_rows` (no drivers), by customer id.

    Made once per table, it spares /score the work of making the rows per request (a dict and its JSON per
    customer, ~1 us each). A request's rows are one dict probe each, which finds the text itself: in a busy worker
    (``benchmarks/serving.py``) that answers 100 ids faster than :class:`IdIndex` and a gather by position, whose
    ~25 numpy calls cost more there than in a loop on their own. Costs the text, ~300-450 bytes a customer, and
    the dict, ~30 bytes a customer."""

    by_id: dict[str, bytes]

    @classmethod
    def of(cls, table: ScoreTable, chunk: int = 50_000) -> RowTexts:
        by_id: dict[str, bytes] = {}
        for first in range(0, len(table), chunk):
            rows = np.arange(first, min(len(table), first + chunk))
            by_id.update(zip(table.ids[rows].tolist(), _row_texts(table, rows)))
        return cls(by_id)

    def answer(self, customer_ids: Sequence[str]) -> tuple[bytes, list[str]]:
        """The rows of the known ids (in request order, each once) as the items of a JSON array (``row,row``),
        and the unknown ids apart."""
        wanted = list(dict.fromkeys(customer_ids))
        found = list(map(self.by_id.get, wanted))
        unknown = [c for c, text in zip(wanted, found) if text is None] if None in found else []
        return b",".join(filter(None, found)), unknown


def _row_texts(table: ScoreTable, positions: np.ndarray) -> list[bytes]:
    """The JSON text of the rows at ``positions`` (:func:`score_rows`'s rows, as orjson writes them), a column at a
    time: numbers through one orjson list each (their texts hold no comma), the few distinct texts once."""
    def numbers(values: np.ndarray) -> list[bytes]:
        return orjson.dumps(values.tolist())[1:-1].split(b",") if len(values) else []

    def texts(values: np.ndarray) -> list[bytes]:
        known = {v: orjson.dumps(v) for v in dict.fromkeys(values.tolist())}
        return [known[v] for v in values.tolist()]

    none = [b"null"] * len(positions)
    columns = [list(map(orjson.dumps, table.ids[positions].tolist())),
               *(numbers(table.numbers[c][positions]) for c in SCORE_NUMBERS),
               *(texts(table.texts[c][positions]) for c in SCORE_TEXTS),
               *(numbers(table.numbers[c][positions]) if c in table.numbers else none for c in SCORE_INTERVALS), none]
    return [ROW_TEMPLATE % row for row in zip(*columns)]


def check_segments(table: ScoreTable, segments: Sequence[str] | None) -> None:
    """422 for a segment that no customer of the score table is in (most likely a typo)."""
    unknown = [s for s in segments or () if s not in table.ranking.by_segment]
    if unknown:
        known = ", ".join(sorted(table.ranking.by_segment))
        raise ApiError(422, "invalid_request", f"unknown segment(s) {', '.join(map(repr, unknown))}; the score "
                       f"table has: {known}", [{"field": "segments", "issue": f"unknown segment {s!r}"} for s in unknown])


def prioritised(table: ScoreTable, plan: Plan) -> list[dict]:
    """The rows of a :class:`serving.ranking.Plan`, best first, with rank and expected value saved."""
    rows = score_rows(table, plan.positions)
    return [{**row, "rank": rank, "expected_value_saved": saved}
            for rank, (row, saved) in enumerate(zip(rows, plan.expected_value_saved.tolist()), start=1)]
