"""The campaign store's tables, as SQLAlchemy 2 typed declarative classes.

| table          | one row per                                                     |
|----------------|-----------------------------------------------------------------|
| ``campaigns``  | recorded plan: who asked, which model and scores, its settings  |
| ``members``    | customer of a campaign, ``treated`` or ``control``, frozen scores |
| ``suppressions`` | customer who objected to marketing (never in a campaign)      |
| ``audit``      | action taken (plan, export, suppression, erasure) and by whom   |
| ``measurements`` | segment of a measured effect at a data date (counts and sums) |

Times are UTC (stored without a zone by SQLite). The schema is created and changed only by the
Alembic migrations in ``campaigns/migrations`` (``campaigns.migrate.upgrade``); a test checks that the
migrated schema equals these classes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: The two groups of a campaign; ``control`` members are held out (the CRM must not contact them).
GROUPS = ("treated", "control")
NAME_LENGTH = 200
ID_LENGTH = 200


class Base(DeclarativeBase):
    """Declarative base: JSON columns for ``dict[str, Any]``, bounded strings for ids and names."""

    type_annotation_map = {dict[str, Any]: JSON, str: String(NAME_LENGTH)}


class Campaign(Base):
    """One recorded plan; ``fingerprint`` identifies the request, so a repeat returns this row."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[dt.datetime]
    campaign_date: Mapped[dt.date]
    requested_by: Mapped[str]
    model_version: Mapped[str | None]
    scores_as_of: Mapped[dt.date | None]
    control_share: Mapped[float]
    holdout_share: Mapped[float]
    horizon_days: Mapped[int]
    window_days: Mapped[int]
    parameters: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    n_treated: Mapped[int]
    n_control: Mapped[int]
    n_suppressed: Mapped[int]
    n_held_out: Mapped[int]

    __table_args__ = (
        CheckConstraint("control_share >= 0 AND control_share < 1", name="ck_campaigns_control_share"),
        CheckConstraint("holdout_share >= 0 AND holdout_share < 1", name="ck_campaigns_holdout_share"),
        CheckConstraint("window_days > 0 AND horizon_days > 0", name="ck_campaigns_days"),
    )


class Member(Base):
    """A customer of a campaign with the scores at selection (frozen: a retrain does not change them)."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    group: Mapped[str] = mapped_column(String(7))
    rank: Mapped[int]
    segment: Mapped[str] = mapped_column(String(64))
    churn_probability: Mapped[float]
    clv: Mapped[float]
    value_at_risk: Mapped[float]

    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_members_campaign_customer"),
        CheckConstraint("\"group\" IN ('treated', 'control')", name="ck_members_group"),
        Index("ix_members_customer_id", "customer_id"),
    )


class Suppression(Base):
    """A customer who objected to marketing (GDPR Art. 21, CCPA opt-out) or was erased."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    reason: Mapped[str]
    created_at: Mapped[dt.datetime]
    source: Mapped[str]


class AuditEntry(Base):
    """One action: when (UTC), who (an API key's name, never the key), what, and its details."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    who: Mapped[str]
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_audit_at", "at"),)


class Measurement(Base):
    """A campaign's measured outcome in one segment from the data up to ``data_through`` (inclusive).

    Counts and sums only (no customer ids), so a measured effect survives the erasure of a member.
    """

    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    data_through: Mapped[dt.date]
    measured_at: Mapped[dt.datetime]
    finished: Mapped[bool]
    segment: Mapped[str] = mapped_column(String(64))
    n_treated: Mapped[int]
    n_control: Mapped[int]
    retained_treated: Mapped[int]
    retained_control: Mapped[int]
    spend_treated: Mapped[float]
    spend_control: Mapped[float]

    __table_args__ = (
        UniqueConstraint("campaign_id", "data_through", "segment", name="uq_measurements_campaign_date_segment"),
    )
