"""The audit trail: every plan, export, suppression and erasure, with the API key's name (never the key)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, insert, select

from churnclv.campaigns.models import AuditEntry
from churnclv.campaigns.store import store_errors, writing

__all__ = ["audit_trail", "jsonable", "log_action", "record_action", "utcnow"]


def utcnow() -> dt.datetime:
    """Now in UTC, without a zone (as the store keeps times), to the microsecond."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple, np.ndarray)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def jsonable(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` as plain JSON types (numpy scalars, dates, tuples and sets converted)."""
    return json.loads(json.dumps(dict(detail), default=_plain, allow_nan=False))


def record_action(connection: Connection, *, who: str, action: str, detail: Mapping[str, Any],
                  at: dt.datetime | None = None) -> None:
    """Add one audit row inside the caller's transaction (so it commits or fails with the action)."""
    connection.execute(insert(AuditEntry).values(at=at or utcnow(), who=who, action=action, detail=jsonable(detail)))


def log_action(engine: Engine, *, who: str, action: str, detail: Mapping[str, Any],
               at: dt.datetime | None = None) -> None:
    """Add one audit row in a transaction of its own (e.g. for an export, which writes nothing else)."""
    with store_errors(engine), writing(engine).begin() as connection:
        record_action(connection, who=who, action=action, detail=detail, at=at)


def audit_trail(engine: Engine, *, since: dt.datetime | None = None, limit: int | None = None) -> pd.DataFrame:
    """Audit rows, oldest first: ``id, at, who, action, detail`` (detail a dict)."""
    query = select(AuditEntry.id, AuditEntry.at, AuditEntry.who, AuditEntry.action, AuditEntry.detail)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    query = query.order_by(AuditEntry.id)
    if limit is not None:
        query = query.limit(limit)
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["id", "at", "who", "action", "detail"])
