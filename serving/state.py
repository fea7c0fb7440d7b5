"""What the service serves, loaded and swapped: the pinned model bundle and the batch score table.

:class:`ServingState` holds one reference, ``current`` (a frozen :class:`Served`). A reload (``POST
/reload`` or the periodic check) loads whatever changed completely, then replaces that reference in
one assignment: requests in flight keep the snapshot they started with, new ones see the new one.
The table itself lives in :mod:`serving.table`, the model in :mod:`serving.model`; nothing here reads
the environment (:meth:`ServeConfig.from_settings` takes the settings the service read once).
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.settings import REFRESH_SECONDS, Settings
from churnclv.scoring.registry import connect
from churnclv.scoring.uplift import UPLIFT_URI
from churnclv.serving.errors import ApiError
from churnclv.serving.gauges import drift, monitor_verdict, trust_warnings
from churnclv.serving.model import ServedModel, load_model, resolve_version
from churnclv.serving.table import SCORE_HINT, ScoreTable, day_text, file_fingerprint, load_score_table
from churnclv.serving.uplift import ServedUplift, next_uplift

log = logging.getLogger("churnclv.serving")


@dataclass(frozen=True)
class ServeConfig:
    """Where the model and the score table come from, and how often to look for new ones."""

    model_uri: str
    scores_path: Path
    tracking_uri: str
    artifact_root: Path | None
    refresh_seconds: float = REFRESH_SECONDS
    uplift_uri: str = UPLIFT_URI  # the per-customer uplift model plans rank by when one is registered

    @classmethod
    def from_settings(cls, settings: Settings) -> ServeConfig:
        """CHURNCLV_MODEL_URI, CHURNCLV_SCORES_PATH, CHURNCLV_REFRESH_SECONDS (0 = no periodic check) and
        the MLflow store (CHURNCLV_HOME, MLFLOW_TRACKING_URI), as read by :meth:`Settings.load`."""
        return cls(model_uri=settings.model_uri, scores_path=settings.scores_path, tracking_uri=settings.mlflow_uri,
                   artifact_root=settings.artifact_root, refresh_seconds=settings.refresh_seconds)


@dataclass(frozen=True)
class Served:
    """One consistent snapshot of what is served; replaced whole, never changed."""

    model: ServedModel | None = None
    table: ScoreTable | None = None
    model_problem: str | None = None  # what is wrong with the model, and what to run
    table_problem: str | None = None
    uplift: ServedUplift | None = None  # serving.uplift: None until a model is registered
    uplift_problem: str | None = None

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

    def __init__(self, config: ServeConfig, *, client: Any = None, packaged: ServedModel | None = None):
        self.config = config
        self.packaged = packaged  # the model a Bento carries: served as it is, the registry never asked
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
            uplift, uplift_problem, new_uplift = (None, None, old.uplift is not None) if self.packaged else next_uplift(
                self.client, self.config.uplift_uri, old.uplift, table, force=force, background=True)
            if new_model or new_table or new_uplift or (model_problem, table_problem, uplift_problem) != (
                    old.model_problem, old.table_problem, old.uplift_problem):
                self.current = Served(model, table, model_problem, table_problem, uplift, uplift_problem)
        changed = [name for name, new in (("model", new_model), ("score_table", new_table), ("uplift", new_uplift))
                   if new]
        if changed:
            settle_memory()
            log.info("now serving model v%s and the score table as of %s (%s customers)",
                     model.version if model else None, table.as_of if table else None, len(table) if table else 0)
        return changed

    def _next_model(self, old: ServedModel | None, force: bool) -> tuple[ServedModel | None, str | None, bool]:
        if self.packaged is not None:
            return self.packaged, None, old is not self.packaged
        still = f" (still serving v{old.version})" if old is not None else ""
        try:
            version = resolve_version(self.client(), self.config.model_uri)
        except ChurnclvError as exc:
            return old, f"{exc}{still}", False
        except Exception as exc:  # noqa: BLE001 - the registry is unreachable: keep what is served
            return old, f"cannot reach the model registry at {self.config.tracking_uri}: {first_line(exc)}{still}", False
        if not force and old is not None and (version is None or version == old.version):
            return old, None, False
        failed = self._failed.get("model")
        if not force and failed is not None and failed[0] == version:
            return old, failed[1], False
        try:
            return load_model(self.client(), self.config.model_uri), None, True
        except Exception as exc:  # noqa: BLE001 - whatever fails, the old model keeps serving
            which = "" if version is None else f" (v{version})"
            message = f"cannot load {self.config.model_uri}{which}: {first_line(exc)}{still}"
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
        failed = self._failed.get("table")
        if not force and failed is not None and failed[0] == fingerprint:
            return old, failed[1], False
        try:
            table = load_score_table(path)
            table.row_texts  # noqa: B018 - the answers' rows, made here (off the event loop) before the table is served
            return table, None, True
        except Exception as exc:  # noqa: BLE001 - whatever fails, the old table keeps serving
            message = f"cannot load the score table {path}: {first_line(exc)}{still}"
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
        "run_id": str(meta.get("run_id", "")), "trained_as_of": day_text(meta.get("as_of")),
        "horizon_days": int(meta.get("horizon_days", 0)), "metrics": meta.get("metrics", {}),
        "baselines": meta.get("baselines", {}), "data": meta.get("data", {}),
        "population": meta.get("population"),  # totals over the horizon with their interval (scoring.intervals)
        "score_table": None if table is None else {
            "path": table.path, "as_of": table.as_of, "customers": len(table), "model_version": table.model_version,
            "trained_as_of": day_text(table.attrs.get("trained_as_of")), "has_drivers": table.drivers is not None},
        "monitor": monitor_verdict(table), "drift": drift(table),  # serving.gauges: how far to trust them
        "warnings": warnings(served) + trust_warnings(table),
    }
