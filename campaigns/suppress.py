"""The suppression list: customers who objected to marketing never enter a plan or a control group.

Adding an id twice keeps the first entry (its reason, time and source); two processes adding the same
id at once leave one row. Every change is written to the audit trail in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from churnclv.campaigns.audit import record_action, utcnow
from churnclv.campaigns.errors import CampaignInputError
from churnclv.campaigns.models import ID_LENGTH, Suppression
from churnclv.campaigns.store import store_errors, writing

__all__ = ["drop_suppressed", "insert_ignoring_duplicates", "suppress", "suppressed_ids", "suppression_list",
           "unsuppress"]

#: Ids per ``IN (...)`` query (below SQLite's and PostgreSQL's parameter limits).
CHUNK = 5_000


def _clean_ids(customer_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(str(c).strip() for c in customer_ids))
    blank = [c for c in ids if not c]
    if blank:
        raise CampaignInputError("a customer id to suppress is blank")
    long = [c for c in ids if len(c) > ID_LENGTH]
    if long:
        raise CampaignInputError(f"{len(long)} customer id(s) are longer than {ID_LENGTH} characters, e.g. {long[0][:40]}…")
    return ids


def insert_ignoring_duplicates(connection: Connection, table, rows: list[dict]) -> None:
    """Insert ``rows``, skipping those that break a unique constraint (SQLite, PostgreSQL: ON CONFLICT)."""
    if not rows:
        return
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(connection.dialect.name)
    statement = dialect.insert(table).on_conflict_do_nothing() if dialect else insert(table)
    connection.execute(statement, rows)


def _present(connection: Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        found.update(connection.scalars(select(Suppression.customer_id).where(Suppression.customer_id.in_(chunk))))
    return found


def suppress(engine: Engine, customer_ids: Iterable[str], *, reason: str, source: str, who: str,
             now: dt.datetime | None = None) -> int:
    """Add customers to the suppression list; returns how many were not on it before.

    Parameters
    ----------
    customer_ids : ids to suppress (blanks refused, repeats ignored).
    reason : why, e.g. "objected (GDPR Art. 21)", "opt-out (CCPA)", "erased (GDPR Art. 17)".
    source : where the request came from, e.g. "api", "cli:optouts.csv".
    who : the API key's name or the command-line user (for the audit trail).
    """
    ids, at = _clean_ids(customer_ids), now or utcnow()
    with store_errors(engine), writing(engine).begin() as connection:
        new = [c for c in ids if c not in _present(connection, ids)]
        insert_ignoring_duplicates(connection, Suppression,
                                   [{"customer_id": c, "reason": reason, "created_at": at, "source": source} for c in new])
        record_action(connection, who=who, action="suppress", at=at,
                      detail={"customers": len(ids), "added": len(new), "reason": reason, "source": source})
    return len(new)


def unsuppress(engine: Engine, customer_id: str, *, who: str, now: dt.datetime | None = None) -> bool:
    """Remove one customer from the list (their consent given again); False when they were not on it."""
    with store_errors(engine), writing(engine).begin() as connection:
        removed = connection.execute(delete(Suppression).where(Suppression.customer_id == str(customer_id))).rowcount
        record_action(connection, who=who, action="unsuppress", at=now,
                      detail={"customer_id": str(customer_id), "removed": bool(removed)})
    return bool(removed)


def suppressed_ids(engine: Engine) -> frozenset[str]:
    """Every suppressed customer id."""
    with store_errors(engine), engine.connect() as connection:
        return frozenset(connection.scalars(select(Suppression.customer_id)))


def suppression_list(engine: Engine) -> pd.DataFrame:
    """The list, oldest first: ``customer_id, reason, created_at, source``."""
    query = select(Suppression.customer_id, Suppression.reason, Suppression.created_at, Suppression.source)
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query.order_by(Suppression.id)).all()
    return pd.DataFrame(rows, columns=["customer_id", "reason", "created_at", "source"])


def drop_suppressed(frame: pd.DataFrame, suppressed: Iterable[str]) -> tuple[pd.DataFrame, int]:
    """``frame`` without the rows whose ``customer_id`` is suppressed, and how many rows left.

    For any list a customer may appear on: a plan, a control list, a CSV, a preview.
    """
    keep = ~frame["customer_id"].astype("str").isin(np.asarray(list(suppressed), dtype=object))
    return frame.loc[keep], int((~keep).sum())
