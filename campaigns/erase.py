"""Erasure (GDPR Art. 17): a customer's rows leave the score tables and the campaign members.

What stays: measured effects (:mod:`campaigns.record` keeps counts, never ids) and each campaign's
counts of treated and control members, so the measurements of finished campaigns do not change. The
erased ids go on the suppression list (reason :data:`ERASED`), so later plans, scoring and training can
skip them, and the audit trail records the erasure with its counts (the ids only as a count).

:func:`forget` returns a :class:`Receipt`: per score file and per campaign, how many rows left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, delete, func, select, update

from churnclv.campaigns.audit import record_action, utcnow
from churnclv.campaigns.errors import CampaignStoreError
from churnclv.campaigns.models import Campaign, Member, Suppression
from churnclv.campaigns.store import store_errors, writing
from churnclv.campaigns.suppress import CHUNK, _clean_ids, insert_ignoring_duplicates
from churnclv.contract.files import write_atomic

__all__ = ["ERASED", "Receipt", "erased_ids", "forget", "forget_members", "scrub_score_file"]

#: The suppression reason of an erased customer.
ERASED = "erased (GDPR Art. 17)"


@dataclasses.dataclass(frozen=True)
class Receipt:
    """What an erasure removed where: ``score_files`` (path -> rows), ``campaigns`` (name -> members)."""

    customer_ids: tuple[str, ...]
    score_files: dict[str, int]
    campaigns: dict[str, int]
    suppressed: int
    at: dt.datetime

    @property
    def rows_removed(self) -> int:
        return sum(self.score_files.values()) + sum(self.campaigns.values())

    def to_dict(self) -> dict:
        return {"customer_ids": list(self.customer_ids), "score_files": dict(self.score_files),
                "campaign_members": dict(self.campaigns), "suppressed": self.suppressed,
                "at": self.at.isoformat(), "rows_removed": self.rows_removed}


def scrub_score_file(path: Path, ids: Sequence[str]) -> int:
    """Rewrite one score table (Parquet with its metadata, or CSV) without ``ids``; rows removed.

    Written atomically (:func:`contract.files.write_atomic`); a file without those ids is left alone.
    """
    wanted = pa.array(list(ids), type=pa.string())
    if path.suffix.lower() in (".parquet", ".pq"):
        table = pq.read_table(path)
        drop = pc.is_in(table.column("customer_id").cast(pa.string()), value_set=wanted).fill_null(False)
        removed = int(pc.sum(drop).as_py() or 0)
        if removed:
            kept = table.filter(pc.invert(drop))
            write_atomic(path, lambda tmp: pq.write_table(kept, tmp))
        return removed
    frame = pd.read_csv(path, dtype={"customer_id": "str"}, keep_default_na=False)
    drop = frame["customer_id"].isin(list(ids))
    if drop.any():
        write_atomic(path, lambda tmp: frame.loc[~drop].to_csv(tmp, index=False))
    return int(drop.sum())


def forget_members(connection, ids: list[str]) -> dict[str, int]:
    """Delete the members ``ids`` from every campaign (inside the caller's transaction); name -> rows."""
    removed: dict[str, int] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        counts = connection.execute(
            select(Campaign.name, func.count()).join(Member, Member.campaign_id == Campaign.id)
            .where(Member.customer_id.in_(chunk)).group_by(Campaign.name)).all()
        for name, n in counts:
            removed[name] = removed.get(name, 0) + int(n)
        connection.execute(delete(Member).where(Member.customer_id.in_(chunk)))
    return removed


def forget(engine: Engine, customer_ids: Iterable[str], *, score_files: Iterable[Path], who: str, source: str,
           now: dt.datetime | None = None) -> Receipt:
    """Erase customers: score-file rows, campaign members, then suppress them; the receipt of it all.

    The store's part (members out, suppression in, the audit row) is one transaction; the score
    files are rewritten first, each atomically, so a failure leaves each file whole (old or new).
    """
    ids, at = _clean_ids(customer_ids), now or utcnow()
    files: dict[str, int] = {}
    for path in (Path(p) for p in dict.fromkeys(score_files)):
        if not path.is_file():
            continue
        try:
            files[str(path)] = scrub_score_file(path, ids)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            done = ", ".join(f"{p} ({n} rows)" for p, n in files.items()) or "none"
            raise CampaignStoreError(f"cannot rewrite the score table {path} ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); rewritten before "
                                     f"it: {done}; the campaign store is unchanged: fix it and forget again") from None
    with store_errors(engine), writing(engine).begin() as connection:
        members = forget_members(connection, ids)
        present = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            present.update(connection.scalars(select(Suppression.customer_id).where(Suppression.customer_id.in_(chunk))))
        if present:  # suppressed before (an objection): now erased
            connection.execute(update(Suppression).where(Suppression.customer_id.in_(sorted(present)))
                               .values(reason=ERASED))
        insert_ignoring_duplicates(connection, Suppression, [
            {"customer_id": c, "reason": ERASED, "created_at": at, "source": source} for c in ids if c not in present])
        record_action(connection, who=who, action="forget", at=at,
                      detail={"customers": len(ids), "score_rows": sum(files.values()), "score_files": files,
                              "campaign_members": members, "source": source})
    return Receipt(tuple(ids), files, members, len([c for c in ids if c not in present]), at)


def erased_ids(engine: Engine) -> frozenset[str]:
    """The ids erased so far (suppressed with reason :data:`ERASED`)."""
    with store_errors(engine), engine.connect() as connection:
        return frozenset(connection.scalars(select(Suppression.customer_id).where(Suppression.reason == ERASED)))
