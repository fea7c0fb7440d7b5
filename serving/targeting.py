"""What plans are made with besides the scores: the suppression list, the learned save rates, the uplift.

:class:`Targeting` holds the campaign store (opened on first use, :func:`campaigns.open_store`) and
reads from it, cached until the store changes (a cheap count per request): the suppressed ids and the
save rates learned from finished campaigns (:func:`campaigns.learn_save_rates`). :meth:`Targeting.view`
gives a plan's inputs for one score table: the ranking without the suppressed customers and the rates,
and, when a per-customer uplift model is served (:mod:`serving.uplift`), the ranking by
``clv × uplift`` without the suppressed and the sleeping dogs (uplift credibly negative), counted per segment.

Whether the store changed is asked of SQLite itself where it is a SQLite file (:class:`StoreWatch`, a few
microseconds): :meth:`Targeting.cached_view` gives the last view without a query while nothing was committed
to the store since it was read (by any process), and while the table and the served models are the same.

When the store is missing, locked or unreachable, the campaign endpoints answer 503 naming it
(:meth:`Targeting.engine`); previews keep the suppression list and rates last read (and say so), and
refuse (503) only when no suppression list was ever read: nobody who objected is ever listed.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from churnclv.campaigns import CampaignStoreError, learn_save_rates, measurements, open_store
from churnclv.campaigns.models import Measurement, Suppression
from churnclv.campaigns.rates import PRIOR
from churnclv.campaigns.store import describe
from churnclv.contract import first_line
from churnclv.scoring.uplift import (
    UPLIFT_MIN_OUTCOMES,
    UPLIFT_MIN_PER_GROUP,
    UPLIFT_MODEL_NAME,
    Readiness,
    sleeping_dogs,
)
from churnclv.serving.errors import ApiError
from churnclv.serving.ranking import Ranking, build_ranking
from churnclv.serving.table import ScoreTable
from churnclv.serving.uplift import ServedUplift

#: Seconds before a store that failed to open is tried again.
RETRY_SECONDS = 5.0
__all__ = ["RETRY_SECONDS", "UPLIFT_MIN_OUTCOMES", "Targeting", "UpliftView", "View", "prior_rates", "rates_records",
           "score_files", "uplift_note"]


@dataclasses.dataclass(frozen=True)
class UpliftView:
    """A score table ranked by the served uplift model: ``gain`` is ``clv × uplift`` (currency per contact before
    its cost), NaN for the suppressed and the sleeping dogs, ranked per segment as value at risk is."""

    version: str
    metrics: dict
    ranking: Ranking  # by gain, decreasing; the left-out ones last (never qualifying)
    uplift: np.ndarray  # per table row
    dogs: dict[str, int]  # per segment: customers (not suppressed) whose uplift is credibly negative
    customers: dict[str, int]  # per segment: customers not suppressed


def uplift_view(table: ScoreTable, served: ServedUplift, suppressed: np.ndarray) -> tuple[UpliftView | None, str | None]:
    """Rank ``table`` by ``clv × uplift`` (:func:`scoring.uplift.sleeping_dogs` left out, as the suppressed); or
    None and why not: no predictions for this table (yet), still computing, or they failed."""
    which = f"the per-customer uplift model ({UPLIFT_MODEL_NAME} v{served.version})"
    if served.future is None or served.fingerprint != table.fingerprint:
        return None, f"{which} has no predictions for this score table yet: the segments' rates rank the plan"
    if not served.future.done():
        return None, (f"{which} is computing the uplift of the {len(table):,} customers: the segments' rates rank "
                      "the plan until it is done")
    try:
        uplift, uplift_high = served.future.result()
    except Exception as exc:  # noqa: BLE001 - a model that cannot rank this table: the segments' rates do
        return None, f"{which} cannot rank this score table ({first_line(exc)}): the segments' rates rank the plan"
    segment = table.texts["segment"]
    dog = sleeping_dogs(pd.DataFrame({"uplift_high": uplift_high, "segment": segment}))[0] & ~suppressed
    gain = table.numbers["clv"] * uplift
    names, codes = np.unique(segment, return_inverse=True)
    count = lambda mask: dict(zip(map(str, names), np.bincount(codes[mask], minlength=len(names)).tolist()))  # noqa: E731
    ranking = build_ranking(np.where(dog | suppressed, np.nan, gain), segment)
    return UpliftView(served.version, dict(served.metrics), ranking, uplift, count(dog), count(~suppressed)), None


@dataclasses.dataclass(frozen=True)
class View:
    """A plan's inputs for one score table: the ranking without suppressed customers, rates per segment."""

    ranking: Ranking
    suppressed: int  # customers of the score table left out as suppressed
    rates: pd.DataFrame  # campaigns.rates.RATE_COLUMNS, one row per segment of the table
    outcomes: int  # members of finished campaigns the rates were learned from
    notes: tuple[str, ...]
    by_uplift: UpliftView | None = None  # the served uplift model's ranking (None: none served)
    treated: int = 0  # of ``outcomes``, contacted

    def rate_of(self) -> dict[str, float]:
        return dict(zip(self.rates["segment"], self.rates["rate"].astype(float)))

    def harmful(self) -> list[str]:
        return self.rates.loc[self.rates["harmful"], "segment"].tolist()

    @property
    def uplift(self) -> str:
        return uplift_note(self.outcomes, treated=self.treated)


def uplift_note(outcomes: int, *, treated: int | None = None) -> str:
    """Why segment rates rank a plan: how many more outcomes the per-customer uplift model needs
    (:func:`scoring.uplift.readiness`), or that it has enough and is not fitted yet. ``treated``: of the
    ``outcomes``, how many were contacted (None: the smaller group is not checked)."""
    if treated is None:
        more = max(0, UPLIFT_MIN_OUTCOMES - outcomes)
        return (f"segment rates are used; the per-customer uplift model needs {more:,} more outcomes "
                f"(members of finished campaigns: {outcomes:,} of {UPLIFT_MIN_OUTCOMES:,})")
    ready = Readiness(n_treated=treated, n_control=max(0, outcomes - treated), min_outcomes=UPLIFT_MIN_OUTCOMES,
                      min_per_group=UPLIFT_MIN_PER_GROUP)
    if not ready.enough:
        return ready.message
    return (f"segment rates are used; there are enough outcomes for the per-customer uplift model "
            f"({outcomes:,} members of finished campaigns) but none is registered as {UPLIFT_MODEL_NAME}@champion: "
            "fit it with churnclv campaigns uplift --transactions FILE")


def prior_rates(segments: list[str]) -> pd.DataFrame:
    """Every segment at the prior (``assumed``): what plans use before any campaign has finished."""
    return learn_save_rates(pd.DataFrame(columns=["campaign", "segment", "finished", "n_treated", "n_control",
                                                  "retained_treated", "retained_control"]), segments=segments)


class StoreWatch:
    """Has a SQLite campaign store changed since a :meth:`version` was read? SQLite's ``PRAGMA data_version`` on a
    read-only connection of its own changes with every commit of any other connection, of this process or
    another; with the file's identity (a file put in its place is a change). Not for other databases."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None

    @classmethod
    def of(cls, engine: Engine) -> StoreWatch | None:
        """A watch on the engine's SQLite file; None for another database (or one in memory)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return cls(Path(url.database).expanduser())

    def version(self) -> tuple | None:
        """Equal to an earlier one only if nothing was committed to the store in between; None when unknown."""
        try:
            st = os.stat(self.path)
            with self._lock:
                if self._db is None or self._file != (st.st_dev, st.st_ino):
                    if self._db is not None:
                        self._db.close()
                    self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                               check_same_thread=False)
                    self._file = (st.st_dev, st.st_ino)
                return (*self._file, self._db.execute("PRAGMA data_version").fetchone()[0])
        except (OSError, sqlite3.Error):
            return None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class Targeting:
    """The campaign store of a service, and what plans read from it (cached, thread-safe)."""

    def __init__(self, url: str | None, *, engine: Engine | None = None, served: Callable[[], Any] | None = None):
        self.url = url
        #: what is served now (``serving.state.Served``): its ``uplift`` and ``uplift_problem``
        self.served = served or (lambda: None)
        self._engine: Engine | None = engine  # an engine already open on ``url`` (the command line's)
        self._problem: tuple[float, str] | None = None
        self._lock = threading.Lock()
        self._suppressed: tuple[tuple, frozenset[str]] | None = None
        self._failed: tuple[float, str] | None = None  # when reading the store last failed, and why
        self._rates: dict[tuple, tuple[pd.DataFrame, int, int]] = {}
        self._watch: StoreWatch | None = None  # SQLite stores: whether anything was committed since (cached_view)
        #: (key, the view of the table and store, its notes, the view given with them): one table is served at a
        #: time, and the view given is the same object while neither changes
        self._kept: tuple | None = None
        self._fresh: tuple | None = None  # (store version, table, served snapshot, view) for cached_view

    def where(self) -> str:
        return describe(self.url) if self.url else "(none configured)"

    def engine(self) -> Engine:
        """The store, opened and migrated on first use; 503 ``campaign_store_unavailable`` naming it."""
        if self._engine is not None:
            return self._engine
        if self.url is None:
            raise ApiError(503, "campaign_store_unavailable", "no campaign store is configured (CHURNCLV_DB_URL)")
        with self._lock:
            if self._engine is None:
                if self._problem is not None and time.monotonic() - self._problem[0] < RETRY_SECONDS:
                    raise ApiError(503, "campaign_store_unavailable", self._problem[1])
                try:
                    self._engine = open_store(self.url, busy_timeout=10.0)
                except CampaignStoreError as exc:
                    self._problem = (time.monotonic(), str(exc))
                    raise ApiError(503, "campaign_store_unavailable", str(exc)) from None
        return self._engine

    def unavailable(self, exc: CampaignStoreError) -> ApiError:
        """A store error met mid-request, as the 503 the campaign endpoints answer."""
        return ApiError(503, "campaign_store_unavailable", str(exc))

    def _stamp(self, engine: Engine, table) -> tuple:
        with engine.connect() as connection:
            return tuple(connection.execute(select(func.count(), func.max(table.id))).one())

    def suppressed(self) -> tuple[tuple, frozenset[str], str | None]:
        """The suppressed ids (re-read when the list changed), their stamp, and a note when the store could not
        be read. After a failure the store is asked again only after :data:`RETRY_SECONDS` (a request never
        waits on a dead server more than once in that time)."""
        try:
            if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_SECONDS:
                raise ApiError(503, "campaign_store_unavailable", self._failed[1])
            engine = self.engine()
            stamp = self._stamp(engine, Suppression)
            if self._suppressed is None or self._suppressed[0] != stamp:
                with engine.connect() as connection:
                    ids = frozenset(connection.scalars(select(Suppression.customer_id)))
                self._suppressed = (stamp, ids)
            self._failed = None
            return (*self._suppressed, None)
        except Exception as exc:  # noqa: BLE001 - the store is gone: say so
            message = exc.message if isinstance(exc, ApiError) else first_line(exc)
            if self._failed is None:
                self._failed = (time.monotonic(), message)
            if self._suppressed is None:
                raise ApiError(503, "campaign_store_unavailable", f"{message}; the suppression list cannot be "
                               "read, so no list of customers to contact is given") from None
            return (*self._suppressed, f"{message}: the suppression list and save rates as last read are used")

    def rates(self, segments: list[str]) -> tuple[pd.DataFrame, int, int]:
        """Save rates learned from finished campaigns for ``segments`` (prior where none is measured), the
        members of finished campaigns they were learned from, and how many of those were contacted."""
        try:
            if self._failed is not None:
                raise ApiError(503, "campaign_store_unavailable", self._failed[1])
            engine = self.engine()
            key = (self._stamp(engine, Measurement), tuple(segments))
            if key not in self._rates:
                outcomes = measurements(engine, finished_only=True)
                treated = int(outcomes["n_treated"].sum()) if len(outcomes) else 0
                n = treated + int(outcomes["n_control"].sum()) if len(outcomes) else 0
                self._rates = {key: (learn_save_rates(outcomes, segments=segments, prior=PRIOR), n, treated)}
            return self._rates[key]
        except Exception:  # noqa: BLE001 - unreadable store: the last rates, else the prior (said by suppressed())
            last = next(iter(self._rates.values()), None)
            return last if last is not None else (prior_rates(segments), 0, 0)

    def cached_view(self, table: ScoreTable) -> View | None:
        """What :meth:`view` gave last, when nothing can have changed since: the same table and served models, a
        SQLite store with no commit since it was read; else None (ask :meth:`view`, which may query the store)."""
        fresh = self._fresh
        if fresh is None or fresh[1] is not table or fresh[2] is not self.served() or self._watch is None:
            return None
        return fresh[3] if self._watch.version() == fresh[0] else None

    def view(self, table: ScoreTable) -> View:
        """The ranking of ``table`` without suppressed customers, and the save rates of its segments."""
        version = self._watch.version() if self._watch is not None else None  # before the store is read
        snapshot = self.served()
        view = self._view(table, snapshot)
        if self._watch is None and self._engine is not None:
            self._watch = StoreWatch.of(self._engine)
        uplift = getattr(snapshot, "uplift", None)
        settled = uplift is None or uplift.future is None or uplift.future.done()  # else its ranking is still to come
        keep = version is not None and settled and self._failed is None
        self._fresh = (version, table, snapshot, view) if keep else None
        return view

    def _view(self, table: ScoreTable, snapshot: Any) -> View:
        stamp, ids, note = self.suppressed()
        segments = sorted(table.ranking.by_segment)
        rates, outcomes, treated = self.rates(segments)
        served: ServedUplift | None = getattr(snapshot, "uplift", None)
        trouble = getattr(snapshot, "uplift_problem", None)
        key = (table.fingerprint, id(table), stamp, id(rates), None if served is None else (
            served.version, served.fingerprint, served.future is not None and served.future.done()))
        kept = self._kept
        if kept is None or kept[0] != key:
            out = np.isin(table.ids, np.asarray(list(ids), dtype=object)) if ids else np.zeros(len(table), bool)
            ranking = table.ranking if not out.any() else build_ranking(
                np.where(out, np.nan, table.numbers["value_at_risk"]), table.texts["segment"])
            by_uplift, problem = uplift_view(table, served, out) if served is not None else (None, None)
            view = View(ranking, int(out.sum()), rates, outcomes, (problem,) if problem else (), by_uplift, treated)
            kept = (key, view, None, None)
        view = kept[1]
        extra = (f"{trouble}: the segments' rates rank the plan" if trouble and view.by_uplift is None else None)
        notes = tuple(n for n in (*view.notes, extra, note) if n)
        if kept[2] != notes:
            kept = (key, view, notes, dataclasses.replace(view, notes=notes))
        self._kept = kept
        return kept[3]

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        if self._engine is not None:
            self._engine.dispose()


def score_files(scores_path: Path, home: Path) -> list[Path]:
    """The score tables an erasure rewrites: ``scores_path`` and every CSV or Parquet file in
    ``home/scores/`` (earlier score tables kept for the monitor)."""
    folder = home / "scores"
    others = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".parquet", ".csv")) if folder.is_dir() else []
    return list(dict.fromkeys([scores_path, *others]))


def rates_records(rates: pd.DataFrame) -> list[dict[str, Any]]:
    """The save rates as the answers list them (per segment: rate, interval, source, n, campaigns)."""
    return [{"segment": str(r.segment), "rate": float(r.rate), "low": float(r.rate_low), "high": float(r.rate_high),
             "source": str(r.source), "n": int(r.n), "campaigns": int(r.campaigns), "harmful": bool(r.harmful),
             "measured_rate": None if pd.isna(r.measured_rate) else float(r.measured_rate)}
            for r in rates.itertuples(index=False)]
