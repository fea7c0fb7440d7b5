"""Migrations of the campaign store, run in code (no ``alembic.ini`` at run time).

:func:`open_store` is what every entry point calls: an engine for the URL, migrated to the newest
revision this code knows. Two processes opening a fresh store at once are safe: the migration runs in
one write transaction (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so the second waits
and then finds the tables made. A store migrated by a newer churnclv is refused, never downgraded.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from churnclv.campaigns.errors import StoreTooNewError
from churnclv.campaigns.store import BUSY_TIMEOUT_SECONDS, describe, make_engine, store_errors, writing

__all__ = ["MIGRATIONS", "VERSION_TABLE", "alembic_config", "current_revision", "head_revision",
           "open_store", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Alembic's version table for this store (MLflow's own is ``alembic_version``).
VERSION_TABLE = "campaigns_alembic_version"
#: Key of the PostgreSQL advisory lock held while migrating (any fixed 64-bit number).
_PG_LOCK = 0x63686E636C76  # "chnclv"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for ``campaigns/migrations``; ``connection`` is the one env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _known() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The store's revision (None: not migrated yet)."""
    with store_errors(engine), engine.connect() as connection:
        return _revision(connection)


def _check_known(revision: str | None, url: URL) -> None:
    if revision is not None and revision not in _known():
        raise StoreTooNewError(f"the campaign store {describe(url)} is at revision {revision}, newer than "
                               f"this churnclv knows (up to {head_revision()}): upgrade churnclv")


def upgrade(engine: Engine) -> str:
    """Migrate the store to :func:`head_revision` (nothing to do when it is there); return the revision.

    Raises
    ------
    StoreTooNewError : the store is at a revision this code does not know.
    CampaignStoreError : the database is locked, unreachable or not a database (one line).
    """
    head = current_revision(engine)
    _check_known(head, engine.url)
    if head == head_revision():
        return head
    with store_errors(engine), writing(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        _check_known(_revision(connection), engine.url)  # another process may have migrated meanwhile
        command.upgrade(alembic_config(connection), "head")
    return head_revision()


def open_store(url: str | URL, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine for the campaign store at ``url``, migrated on first use.

    Parameters
    ----------
    url : SQLAlchemy URL: ``CHURNCLV_DB_URL``, else ``campaigns.store.default_url(home)``.
    busy_timeout : seconds a SQLite writer waits for another process's lock.

    Raises
    ------
    CampaignStoreError : one line naming the problem: a bad URL or missing driver, a missing folder,
        a locked, unreachable or newer store.
    """
    engine = make_engine(url, busy_timeout=busy_timeout)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
