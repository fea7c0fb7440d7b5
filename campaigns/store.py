"""The campaign store's engine: a SQLAlchemy URL in, an engine that waits rather than fails out.

SQLite (the default, ``sqlite:///$CHURNCLV_HOME/churnclv.db``) is opened in WAL mode with a busy
timeout, and every write transaction starts with ``BEGIN IMMEDIATE``: two processes writing at once
queue for the write lock (up to the timeout) instead of failing with "database is locked" when a
reader tries to become a writer. Readers never wait for writers (WAL). Any other URL (PostgreSQL for a
team) is used as SQLAlchemy gives it, with a connection check before each use.

Database failures leave every public function of this package as one-line errors
(:mod:`campaigns.errors`) that name the database (its password hidden) and the problem.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from churnclv.campaigns.errors import (
    CampaignStoreError,
    StoreLockedError,
    StoreMissingError,
    StoreUnreachableError,
    StoreUrlError,
)

__all__ = ["BUSY_TIMEOUT_SECONDS", "DB_FILE", "default_url", "describe", "into_wal", "make_engine", "store_errors",
           "writing"]

#: The SQLite file under ``$CHURNCLV_HOME`` when ``CHURNCLV_DB_URL`` is not set.
DB_FILE = "churnclv.db"
#: Seconds a write waits for another process's write lock before :class:`StoreLockedError`.
BUSY_TIMEOUT_SECONDS = 30.0
#: Seconds to wait for a database server to answer a connection (PostgreSQL).
CONNECT_TIMEOUT_SECONDS = 10
_WRITE = "churnclv_write"
_WAL_RETRY_SECONDS = 0.01


def default_url(home: str | Path) -> str:
    """``sqlite:///<home>/churnclv.db`` with ``home`` made absolute (``~`` expanded)."""
    return f"sqlite:///{Path(home).expanduser().resolve() / DB_FILE}"


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreUrlError(f"the campaign store URL {str(url)!r} is not a SQLAlchemy URL "
                            "(e.g. sqlite:///path/churnclv.db or postgresql+psycopg://user@host/db)") from None


def describe(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ``***``."""
    return _parse(url).render_as_string(hide_password=True)


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (None: not SQLite, or in memory)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def into_wal(db: sqlite3.Connection | sqlite3.Cursor, busy_timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, retried until ``busy_timeout`` while another connection converts the file.

    SQLite answers "database is locked" at once, without its busy handler, to a connection that asks for
    WAL while another is converting the same fresh file (two processes opening a new store at once); a
    moment later the file is in WAL and the pragma is a no-op.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_WAL_RETRY_SECONDS)


def _on_sqlite_connect(busy_timeout: float):
    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own: _on_sqlite_begin does
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        into_wal(cursor, busy_timeout)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    return connect


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def make_engine(url: str | URL, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine for the campaign store at ``url`` (nothing is connected yet).

    Parameters
    ----------
    url : SQLAlchemy URL; the caller passes ``CHURNCLV_DB_URL`` or :func:`default_url` of the home.
    busy_timeout : seconds a SQLite writer waits for another process's lock.

    Raises
    ------
    StoreUrlError : not a URL, or its driver is not installed.
    StoreMissingError : a SQLite file whose folder does not exist.
    """
    parsed = _parse(url)
    database = _sqlite_file(parsed)
    if database is not None and not database.parent.is_dir():
        raise StoreMissingError(f"the campaign store {describe(parsed)} cannot be created: "
                                f"its folder {database.parent} does not exist")
    is_sqlite = parsed.get_backend_name() == "sqlite"
    connect_args = {"timeout": busy_timeout} if is_sqlite else {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=not is_sqlite)
    except NoSuchModuleError:
        raise StoreUrlError(f"the campaign store URL {describe(parsed)} names a database driver "
                            "that is not known to SQLAlchemy") from None
    except ImportError as exc:
        raise StoreUrlError(f"the driver of the campaign store {describe(parsed)} is not installed "
                            f"({exc.name or exc})") from None
    if is_sqlite:
        event.listen(engine, "connect", _on_sqlite_connect(busy_timeout))
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def writing(engine: Engine) -> Engine:
    """The same engine whose transactions take the write lock at ``BEGIN`` (SQLite ``BEGIN IMMEDIATE``)."""
    return engine.execution_options(**{_WRITE: True})


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain(exc: DBAPIError, url: str | URL) -> CampaignStoreError:
    """The one-line error for a driver failure on the store at ``url``."""
    where, reason = describe(url), _first_line(exc)
    lowered = reason.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreLockedError(f"the campaign store {where} is locked by another process "
                                "(still busy after the timeout); try again")
    if "unable to open database file" in lowered:
        return StoreUnreachableError(f"the campaign store {where} cannot be opened (permissions, or "
                                     "the folder was removed)")
    if "file is not a database" in lowered:
        return StoreUnreachableError(f"the campaign store {where} is not a SQLite database")
    if isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated:
        return StoreUnreachableError(f"the campaign store {where} cannot be reached: {reason}")
    return CampaignStoreError(f"the campaign store {where} failed: {reason}")


@contextlib.contextmanager
def store_errors(engine: Engine) -> Iterator[None]:
    """Turn driver failures (not integrity errors, which callers handle) into one-line store errors."""
    try:
        yield
    except IntegrityError:
        raise
    except (DBAPIError, DatabaseError) as exc:
        raise explain(exc, engine.url) from None
