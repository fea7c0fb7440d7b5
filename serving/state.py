"""What the service serves: the pinned model bundle and the batch score table, loaded and swapped.

:class:`ServingState` holds one reference, ``current`` (a frozen :class:`Served`). A reload (``POST
/reload`` or the periodic check) loads whatever changed completely, then replaces that reference in
one assignment: requests in flight keep the snapshot they started with, new ones see the new one.
Nothing here reads the environment at import; :meth:`ServeConfig.from_env` is called by the service.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract import ChurnclvError
from contract.defaults import MODEL_URI
from contract.settings import Settings
from features import TransactionsError, validate_transactions
from scoring.registry import connect, load_bundle, resolve
from serving.errors import ApiError
from serving.ranking import Ranking, build_ranking

log = logging.getLogger("churnclv.serving")
NUMBERS = ("churn_probability", "p_alive", "expected_purchases", "expected_spend", "clv", "value_at_risk")
TEXTS = ("segment", "recommended_action")
SCORE_HINT = "write one first: churnclv score --transactions <file> [--explain]"


@dataclass(frozen=True)
class ServeConfig:
    """Where the model and the score table come from, read from the environment by the service."""

    model_uri: str
    scores_path: Path
    tracking_uri: str
    artifact_root: Path | None
    refresh_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> ServeConfig:
        """CHURNCLV_MODEL_URI, CHURNCLV_SCORES_PATH, CHURNCLV_REFRESH_SECONDS (0 = no periodic check),
        and the MLflow store of :class:`contract.settings.Settings` (CHURNCLV_HOME, MLFLOW_TRACKING_URI)."""
        settings = Settings()
        return cls(
            model_uri=os.environ.get("CHURNCLV_MODEL_URI") or MODEL_URI,
            scores_path=Path(os.environ.get("CHURNCLV_SCORES_PATH") or settings.scores_path).expanduser(),
            tracking_uri=settings.mlflow_uri,
            artifact_root=settings.artifact_root,
            refresh_seconds=float(os.environ.get("CHURNCLV_REFRESH_SECONDS") or 5.0),
        )


@dataclass(frozen=True)
class ServedModel:
    bundle: Any
    metadata: dict

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))


@dataclass(frozen=True)
class ScoreTable:
    """The batch score table as column arrays, with an id -> row dict and the prioritisation ranking."""

    path: str
    fingerprint: tuple
    attrs: dict
    ids: np.ndarray  # object array of str
    index: dict  # customer_id -> row position
    numbers: dict  # column -> float64 array
    texts: dict  # column -> object array (few distinct strings, shared)
    drivers: pa.Array | None  # JSON text per row, kept in Arrow memory
    ranking: Ranking = field(repr=False)

    @property
    def as_of(self) -> str:
        return str(self.attrs.get("as_of", "unknown"))

    @property
    def model_version(self) -> str:
        return str(self.attrs.get("model_version", "unknown"))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def contactable(self) -> list[str]:
        """Segments whose recommended action is a touchpoint (the policy says no_contact for the rest)."""
        contact = self.texts["recommended_action"] != "no_contact"
        return sorted(set(self.texts["segment"][contact].tolist()))


def file_fingerprint(path: Path) -> tuple | None:
    """(inode, size, mtime in ns) of a file, or None when it is missing: cheap change detection."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read_arrow(path: Path) -> tuple[pa.Table, dict]:
    if path.suffix.lower() in (".csv", ".gz"):
        frame = pd.read_csv(path, dtype={"customer_id": "str", "segment": "str", "recommended_action": "str"})
        return pa.Table.from_pandas(frame, preserve_index=False), {}
    table = pq.read_table(path)
    attrs = json.loads((table.schema.metadata or {}).get(b"PANDAS_ATTRS", b"{}"))
    return table, attrs


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
    missing = [c for c in ("customer_id", *NUMBERS, *TEXTS) if c not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a score table: no column(s) {', '.join(missing)}; {SCORE_HINT}")
    ids = np.asarray(table.column("customer_id").cast(pa.string()).to_pylist(), dtype=object)
    index = dict(zip(ids.tolist(), range(len(ids))))
    if len(index) != len(ids) or None in index:
        raise ValueError(f"{path}: customer_id must be unique and non-empty in a score table")
    numbers = {c: table.column(c).cast(pa.float64()).to_numpy() for c in NUMBERS}
    texts = {c: _texts(table.column(c).cast(pa.string())) for c in TEXTS}
    drivers = table.column("drivers").cast(pa.string()).combine_chunks() if "drivers" in table.column_names else None
    return ScoreTable(str(path), fingerprint, attrs, ids, index, numbers, texts, drivers,
                      build_ranking(numbers["value_at_risk"], texts["segment"]))


def load_model(client, uri: str) -> ServedModel:
    """The bundle at ``uri`` pinned to a registered version (:func:`scoring.registry.load_bundle`)."""
    bundle = load_bundle(client, uri)
    return ServedModel(bundle, dict(bundle.metadata))


def resolve_version(client, uri: str) -> str | None:
    """The registered version an alias or version URI points at now (one registry query)."""
    _, version = resolve(client, uri)
    return None if version is None else str(version.version)


@dataclass(frozen=True)
class Served:
    """One consistent snapshot of what is served; replaced whole, never changed."""

    model: ServedModel | None = None
    table: ScoreTable | None = None
    model_problem: str | None = None  # what is wrong with the model, and what to run
    table_problem: str | None = None

    @property
    def ready(self) -> bool:
        return self.model is not None and self.table is not None

    @property
    def problems(self) -> list[str]:
        return [p for p in (self.model_problem, self.table_problem) if p]

    def need_table(self) -> ScoreTable:
        if self.table is None:
            raise ApiError(503, "no_score_table", self.table_problem or "no score table is loaded yet")
        return self.table

    def need_model(self) -> ServedModel:
        if self.model is None:
            raise ApiError(503, "no_model", self.model_problem or "no model is loaded yet")
        return self.model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def lookup(table: ScoreTable, customer_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Row positions of the known ids (request order, each once) and the unknown ids, apart."""
    index, found, unknown = table.index, [], []
    for cid in dict.fromkeys(customer_ids):
        position = index.get(cid)
        if position is None:
            unknown.append(cid)
        else:
            found.append(position)
    return np.asarray(found, dtype=np.int64), unknown


def records(table: ScoreTable, positions: np.ndarray, *, explain: bool = False) -> list[dict]:
    """The score-table rows at ``positions`` as dicts (with parsed ``drivers`` when asked and present)."""
    columns = {"customer_id": table.ids[positions].tolist()}
    columns.update({c: table.numbers[c][positions].tolist() for c in NUMBERS})
    columns.update({c: table.texts[c][positions].tolist() for c in TEXTS})
    if explain and table.drivers is not None:
        texts = table.drivers.take(pa.array(positions, type=pa.int64())).to_pylist()
        columns["drivers"] = [json.loads(t) if t else None for t in texts]
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def frame_of(transactions: Sequence[Any]) -> pd.DataFrame:
    """Posted transaction models as a raw table for ``features.validate_transactions`` (unused
    optional columns left out, so that the contract sees what a file with those columns would hold)."""
    names = ("customer_id", "timestamp", "amount", "order_id", "quantity", "channel", "category")
    columns = {n: [getattr(t, n) for t in transactions] for n in names}
    return pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in columns.items()
                         if n in names[:3] or any(x is not None for x in v)})


def score_history(model: ServedModel, transactions: Sequence[Any], *, as_of, explain: bool) -> tuple[list[dict], list[str], int]:
    """Score posted transactions with the bundle, validated like a file.

    Returns (rows, ids of posted customers without a purchase by ``as_of``, transactions used).
    Raises :class:`ApiError` 422 with the contract's problems when the rows break it.
    """

    try:
        clean, _ = validate_transactions(frame_of(transactions))
    except TransactionsError as exc:
        details = [{"field": f"transactions.{p.column}", "issue": p.message(), "count": p.count}
                   for p in exc.problems]
        message = _first_line(exc) if not details else f"{len(details)} problem(s) in the transactions"
        raise ApiError(422, "invalid_transactions", message, details) from None
    seen = (clean["timestamp"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)).to_numpy()
    posted = list(dict.fromkeys(clean["customer_id"].tolist()))
    try:
        scored = model.bundle.score(clean, as_of=pd.Timestamp(as_of), explain=explain)
    except (ChurnclvError, ValueError) as exc:
        raise ApiError(422, "cannot_score", _first_line(exc)) from None
    known = set(scored["customer_id"])
    return scored.to_dict("records"), [c for c in posted if c not in known], int(seen.sum())


def settle_memory() -> None:
    """Collect what a swap left behind, then freeze what is live out of the cyclic GC's sight.

    A full collection over the ~300k objects of the loaded libraries takes ~0.1 s and would stall
    requests every so often (p99); frozen objects are skipped by it (``gc.freeze``). Called once
    per swap, so old snapshots are still collected. Arrow's allocator then returns the pages
    the Parquet read used (~150 MB for a million customers) to the system.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    pa.default_memory_pool().release_unused()


class ServingState:
    """The served snapshot, :meth:`refresh` to load what changed, and a periodic check (:meth:`watch`)."""

    def __init__(self, config: ServeConfig, *, client: Any = None):
        self.config = config
        self.current = Served()
        self._client = client
        self._lock = threading.Lock()
        self._failed: dict[str, tuple] = {}  # what failed to load, so the periodic check does not retry it
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def client(self):
        if self._client is None:
            self._client = connect(self.config.tracking_uri, self.config.artifact_root)
        return self._client

    def refresh(self, *, force: bool = False) -> list[str]:
        """Load a new model version and/or score table if they changed (or ``force``), then swap.

        Never raises: what cannot be loaded is reported in ``current.problems`` and the previous
        model/table keep being served. Returns what was swapped in ("model", "score_table").
        """
        with self._lock:
            old = self.current
            model, model_problem, new_model = self._next_model(old.model, force)
            table, table_problem, new_table = self._next_table(old.table, force)
            if new_model or new_table or (model_problem, table_problem) != (old.model_problem, old.table_problem):
                self.current = Served(model, table, model_problem, table_problem)
        changed = [name for name, new in (("model", new_model), ("score_table", new_table)) if new]
        if changed:
            settle_memory()
            log.info("now serving model v%s and the score table as of %s (%s customers)",
                     model.version if model else None, table.as_of if table else None, len(table) if table else 0)
        return changed

    def _next_model(self, old: ServedModel | None, force: bool) -> tuple[ServedModel | None, str | None, bool]:
        still = f" (still serving v{old.version})" if old is not None else ""
        try:
            version = resolve_version(self.client(), self.config.model_uri)
        except ChurnclvError as exc:
            return old, f"{exc}{still}", False
        except Exception as exc:  # noqa: BLE001 - the registry is unreachable: keep what is served
            return old, f"cannot reach the model registry at {self.config.tracking_uri}: {_first_line(exc)}{still}", False
        if not force and old is not None and (version is None or version == old.version):
            return old, None, False
        if not force and self._failed.get("model", (None,))[0] == version:
            return old, self._failed["model"][1], False
        try:
            return load_model(self.client(), self.config.model_uri), None, True
        except Exception as exc:  # noqa: BLE001 - whatever fails, the old model keeps serving
            message = f"cannot load {self.config.model_uri} (v{version}): {_first_line(exc)}{still}"
            log.warning(message)
            self._failed["model"] = (version, message)
            return old, message, False

    def _next_table(self, old: ScoreTable | None, force: bool) -> tuple[ScoreTable | None, str | None, bool]:
        path = self.config.scores_path
        still = f" (still serving the table as of {old.as_of})" if old is not None else ""
        fingerprint = file_fingerprint(path)
        if fingerprint is None:
            return old, f"no score table at {path}: {SCORE_HINT}{still}", False
        if not force and old is not None and fingerprint == old.fingerprint:
            return old, None, False
        if not force and self._failed.get("table", (None,))[0] == fingerprint:
            return old, self._failed["table"][1], False
        try:
            return load_score_table(path), None, True
        except Exception as exc:  # noqa: BLE001 - whatever fails, the old table keeps serving
            message = f"cannot load the score table {path}: {_first_line(exc)}{still}"
            log.warning(message)
            self._failed["table"] = (fingerprint, message)
            return old, message, False

    def watch(self) -> None:
        """Check for a new champion or score table every ``refresh_seconds`` in a daemon thread."""
        if self.config.refresh_seconds <= 0 or self._watcher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.config.refresh_seconds):
                try:
                    self.refresh()
                except Exception:  # never let the checker die
                    log.exception("periodic refresh failed")

        self._watcher = threading.Thread(target=loop, name="churnclv-refresh", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()


NO_DRIVERS = ("the score table has no drivers: it was written without --explain "
              "(rescore with churnclv score --transactions <file> --explain)")


def check_segments(table: ScoreTable, segments: Sequence[str] | None) -> None:
    """422 for a segment that no customer of the score table is in (most likely a typo)."""
    unknown = [s for s in segments or () if s not in table.ranking.by_segment]
    if unknown:
        known = ", ".join(sorted(table.ranking.by_segment))
        raise ApiError(422, "invalid_request", f"unknown segment(s) {', '.join(map(repr, unknown))}; the score "
                       f"table has: {known}", [{"field": "segments", "issue": f"unknown segment {s!r}"} for s in unknown])


def prioritised(table: ScoreTable, plan) -> list[dict]:
    """The rows of a :class:`serving.ranking.Plan`, best first, with rank and expected value saved."""
    rows = records(table, plan.positions)
    return [{**row, "rank": rank, "expected_value_saved": saved}
            for rank, (row, saved) in enumerate(zip(rows, plan.expected_value_saved.tolist()), start=1)]


def warnings(served: Served) -> list[str]:
    """What a client should know: the table was scored by another model version, things missing."""
    notes = list(served.problems)
    if served.model and served.table and served.table.model_version != served.model.version:
        notes.append(f"the score table was written by model v{served.table.model_version}, the served model is "
                     f"v{served.model.version}: rescore (churnclv score ...) to make them agree")
    return notes


def model_info(served: Served) -> dict:
    """What ``GET /model`` reports: the pinned model, its backtest, and the score table."""
    meta, table = served.need_model().metadata, served.table
    return {
        "name": str(meta.get("name", "")), "version": str(meta.get("version", "")), "uri": str(meta.get("uri", "")),
        "run_id": str(meta.get("run_id", "")), "trained_as_of": str(meta.get("as_of", "")),
        "horizon_days": int(meta.get("horizon_days", 0)), "metrics": meta.get("metrics", {}),
        "baselines": meta.get("baselines", {}), "data": meta.get("data", {}),
        "score_table": None if table is None else {
            "path": table.path, "as_of": table.as_of, "customers": len(table), "model_version": table.model_version,
            "trained_as_of": str(table.attrs.get("trained_as_of", "unknown")), "has_drivers": table.drivers is not None},
        "warnings": warnings(served),
    }
