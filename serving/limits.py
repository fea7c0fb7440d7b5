"""Request rates per API key and failed authentications per client address, for the service as a whole.

The limits are ``limits``' sliding-window counters (:class:`limits.strategies.SlidingWindowCounterRateLimiter`:
this window's count plus the previous window's, weighted by how much of it is still in the last period).
Their counters live in small SQLite files that every worker of the server opens (:class:`SQLiteStorage`,
``limits``' storage interface; the keys' in ``CHURNCLV_RATE_LIMIT_STORE``, the addresses' failures beside it in
``…-failures``): two workers, or a restart, share them, so a limit holds for the service, not per worker.
``limits``' own shared storages (Redis, Memcached, MongoDB) need a server this service does not otherwise have;
its memory storage is per process. The files hold counts and expiry times under the key's *name* and the
client's address, never a key, and are written without fsync (counts need no durability).

- ``CHURNCLV_RATE_LIMIT`` (default ``600/minute``): requests per API key; over it, 429 ``rate_limited``.
- ``CHURNCLV_AUTH_FAILURE_LIMIT`` (default ``10/minute``): failed authentications (401) per client address;
  over it, every request of that address that needs a key gets 429 ``auth_locked_out`` until the window
  lets one more attempt in (the back-off, in ``Retry-After``), whatever key it carries: other addresses
  are served as before.

What a request costs: a key's requests are taken from the shared counter in small blocks (:attr:`RateLimits.block`,
a 64th of the limit, at most 32, one for a limit under 128), each worker counting its block down in memory and
dropping what is left when the window turns: one SQLite transaction per block, not per request. The shared count
includes the whole block when it is taken, so the requests served never exceed the limit; a block taken by one
worker and not used is what another worker may be refused early (at most ``block − 1`` per worker, under 1.6% of the
limit). Failed authentications are counted in a file of their own beside the counters (``…-failures``): a request's
check of its address is SQLite's ``PRAGMA data_version`` on it (a few microseconds) while no failure was recorded
since the address was last found clear (the window only lets counts fall, so clear stays clear).

Both answers carry ``Retry-After`` (whole seconds); ``/metrics`` counts refusals by reason
(``churnclv_refusals_total``). ``off`` disables a limit. Should the file be unusable (a full disk), requests
are served without the limits and the problem is logged once a minute: a limit never takes the service down.
"""

from __future__ import annotations

import functools
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow
from limits.strategies import SlidingWindowCounterRateLimiter

from churnclv.campaigns.store import into_wal

log = logging.getLogger("churnclv.serving")

#: Seconds a worker waits for another's lock on the counters file.
_BUSY_SECONDS = 2.0
#: Expired counters are swept after this many increments of a process.
SWEEP_EVERY = 1024
#: A worker takes at most this many of a key's requests from the shared counter at once (see the module).
MAX_BLOCK = 32
#: Refusal reasons counted in /metrics.
REASONS = ("rate_limited", "auth_locked_out", "unauthorized")
SCHEMA = "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)"


def rate(text: str) -> RateLimitItem | None:
    """A rate such as ``600/minute`` or ``10 per 30 seconds`` (``limits``' notation); None for ``off``.
    Raises ValueError for anything else."""
    if text.strip().lower() in ("off", "none", "0"):
        return None
    item = parse(text)
    if item.amount < 1:
        raise ValueError(f"{text!r}: a rate allows at least one request")
    return item


class SQLiteStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """``limits``' storage interface on a SQLite file shared by processes (fixed and sliding-window counters).

    One connection per process (opened on first use), in WAL mode without fsync; each change is one
    ``BEGIN IMMEDIATE`` transaction, so the check and the increment of a sliding window are atomic across
    workers (no over-count to undo, unlike limits' own memory storage).
    """

    STORAGE_SCHEME = ["churnclv+sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = Path(uri.split("://", 1)[1])
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._writes = 0

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
            into_wal(db, _BUSY_SECONDS)  # two workers opening a fresh file at once: the second retries
            db.execute("PRAGMA synchronous=OFF")
            db.execute(SCHEMA)
            self._db = db
        return self._db

    def _read(self, key: str, now: float) -> tuple[int, float]:
        row = self._connection().execute("SELECT count, expires FROM counters WHERE key = ? AND expires > ?",
                                         (key, now)).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, now)

    def _incr(self, db: sqlite3.Connection, key: str, expiry: float, amount: int, now: float) -> int:
        """Add ``amount`` to a live counter, or start it (expiring in ``expiry`` seconds); inside a transaction."""
        row = db.execute(
            "INSERT INTO counters (key, count, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN expires > ? THEN count + excluded.count ELSE excluded.count END, "
            "expires = CASE WHEN expires > ? THEN expires ELSE excluded.expires END RETURNING count",
            (key, amount, now + expiry, now, now)).fetchone()
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
        return int(row[0])

    def _transaction(self, work):
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._transaction(lambda db: self._incr(db, key, expiry, amount, time.time()))

    def get(self, key: str) -> int:
        with self._lock:
            return self._read(key, time.time())[0]

    def get_expiry(self, key: str) -> float:
        with self._lock:
            return self._read(key, time.time())[1]

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` of this process's connection: changes when another connection (of any
        process) commits to the file, not for this connection's own commits."""
        with self._lock:
            return int(self._connection().execute("PRAGMA data_version").fetchone()[0])

    def check(self) -> bool:
        with self._lock:
            self._connection().execute("SELECT 1").fetchone()
        return True

    def reset(self) -> int | None:
        with self._lock:
            return self._connection().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        with self._lock:
            self._connection().execute("DELETE FROM counters WHERE key = ?", (key,))

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        """(previous count, its time to live, current count, its time to live), as limits' memory storage."""
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous, _ = self._read(previous_key, now)
        current, _ = self._read(current_key, now)
        previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False

        def work(db: sqlite3.Connection) -> bool:
            now = time.time()
            previous, previous_ttl, current, _ = self._window(key, expiry, now)
            if math.floor(previous * previous_ttl / expiry + current) + amount > limit:
                return False
            self._incr(db, self.sliding_window_keys(key, expiry, now)[1], 2 * expiry, amount, now)
            return True

        return self._transaction(work)

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        with self._lock:
            return self._window(key, expiry, time.time())

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        for window in self.sliding_window_keys(key, expiry, time.time()):
            self.clear(window)


@functools.cache
def refusals() -> Any:
    """The ``churnclv_refusals_total`` counter by reason, created on first use (after BentoML set
    PROMETHEUS_MULTIPROC_DIR in the worker, so that /metrics sums every worker's count)."""
    from prometheus_client import Counter

    counter = Counter("churnclv_refusals", "Requests refused by the rate limits and API keys, by reason",
                      labelnames=("reason",))
    for reason in REASONS:
        counter.labels(reason=reason)  # shown at 0 before the first refusal
    return counter


def count_refusal(reason: str) -> None:
    refusals().labels(reason=reason).inc()


@dataclass(frozen=True)
class Refusal:
    reason: str
    retry_after: int  # whole seconds


class RateLimits:
    """The per-key and per-address limits on one shared storage (see the module)."""

    def __init__(self, path: Path, *, per_key: RateLimitItem | None, failures: RateLimitItem | None):
        self.path = path
        self.per_key = per_key
        self.failures = failures
        self.storage = SQLiteStorage(f"churnclv+sqlite://{path}")
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.failure_storage = SQLiteStorage(f"churnclv+sqlite://{failures_path(path)}")
        self.failure_limiter = SlidingWindowCounterRateLimiter(self.failure_storage)
        #: a key's requests taken from the shared counter at once
        self.block = 1 if per_key is None else max(1, min(MAX_BLOCK, per_key.amount // 64))
        self._leases: dict[str, tuple[int, int]] = {}  # key name -> (window, requests left of its block)
        self._clear: tuple[int, set[str]] = (-1, set())  # (failures' data_version, addresses found clear at it)
        self._complained = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> RateLimits | None:
        """CHURNCLV_RATE_LIMIT and CHURNCLV_AUTH_FAILURE_LIMIT on the file CHURNCLV_RATE_LIMIT_STORE; None when
        both are off."""
        per_key, failures = rate(settings.rate_limit), rate(settings.auth_failure_limit)
        if per_key is None and failures is None:
            return None
        return cls(settings.rate_limit_store, per_key=per_key, failures=failures)

    def describe(self) -> str:
        return (f"{self.per_key or 'no limit'} per API key, {self.failures or 'no limit'} failed authentications "
                f"per client address")

    def _retry_after(self, limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, *identifiers: str) -> int:
        reset = limiter.get_window_stats(item, *identifiers).reset_time
        return max(1, math.ceil(reset - time.time()))

    def _guarded(self, work, default):
        """``work()``, or ``default`` (serve without the limit) when the storage fails; logged once a minute."""
        try:
            return work()
        except sqlite3.Error as exc:
            if time.monotonic() - self._complained > 60:
                self._complained = time.monotonic()
                log.warning("rate limits not applied: their store %s failed: %s", self.path, exc)
            return default

    def locked_out(self, address: str) -> Refusal | None:
        """429 for an address over its failed authentications (checked before its key is)."""
        if self.failures is None:
            return None

        def work() -> Refusal | None:
            version = self.failure_storage.data_version()
            if self._clear[0] == version and address in self._clear[1]:
                return None
            if self.failure_limiter.test(self.failures, "auth-failures", address):
                if self._clear[0] != version:
                    self._clear = (version, set())
                if len(self._clear[1]) < 10_000:
                    self._clear[1].add(address)
                return None
            return Refusal("auth_locked_out", self._retry_after(self.failure_limiter, self.failures, "auth-failures",
                                                                address))

        return self._guarded(work, None)

    def failed(self, address: str) -> None:
        """Count a failed authentication of an address."""
        if self.failures is not None:
            self._clear = (-1, set())  # this connection's own commit does not change its data_version
            self._guarded(lambda: self.failure_limiter.hit(self.failures, "auth-failures", address), None)

    def over(self, key_name: str) -> Refusal | None:
        """429 for a key over its request rate; otherwise the request is counted (from this worker's block)."""
        if self.per_key is None:
            return None
        window = int(time.time() / self.per_key.get_expiry())  # limits' sliding window keys turn with it
        window_of, left = self._leases.get(key_name, (-1, 0))
        if window_of == window and left > 0:
            self._leases[key_name] = (window, left - 1)
            return None

        def work() -> Refusal | None:
            if self.block > 1 and self.limiter.hit(self.per_key, "key", key_name, cost=self.block):
                self._leases[key_name] = (window, self.block - 1)
                return None
            self._leases.pop(key_name, None)
            if self.limiter.hit(self.per_key, "key", key_name):
                return None
            return Refusal("rate_limited", self._retry_after(self.limiter, self.per_key, "key", key_name))

        return self._guarded(work, None)


def failures_path(path: Path) -> Path:
    """The file of the failed authentications' counters, beside the keys' (``rate-limits-failures.sqlite``)."""
    return path.with_name(f"{path.stem}-failures{path.suffix}")
