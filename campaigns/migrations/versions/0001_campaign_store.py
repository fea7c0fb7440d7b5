"""The campaign store: campaigns, members, suppressions, audit, measurements.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", NAME, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("campaign_date", sa.Date(), nullable=False),
        sa.Column("requested_by", NAME, nullable=False),
        sa.Column("model_version", NAME, nullable=True),
        sa.Column("scores_as_of", sa.Date(), nullable=True),
        sa.Column("control_share", sa.Double(), nullable=False),
        sa.Column("holdout_share", sa.Double(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("n_treated", sa.Integer(), nullable=False),
        sa.Column("n_control", sa.Integer(), nullable=False),
        sa.Column("n_suppressed", sa.Integer(), nullable=False),
        sa.Column("n_held_out", sa.Integer(), nullable=False),
        sa.UniqueConstraint("name"),
        sa.CheckConstraint("control_share >= 0 AND control_share < 1", name="ck_campaigns_control_share"),
        sa.CheckConstraint("holdout_share >= 0 AND holdout_share < 1", name="ck_campaigns_holdout_share"),
        sa.CheckConstraint("window_days > 0 AND horizon_days > 0", name="ck_campaigns_days"),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("group", sa.String(7), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("churn_probability", sa.Double(), nullable=False),
        sa.Column("clv", sa.Double(), nullable=False),
        sa.Column("value_at_risk", sa.Double(), nullable=False),
        sa.UniqueConstraint("campaign_id", "customer_id", name="uq_members_campaign_customer"),
        sa.CheckConstraint("\"group\" IN ('treated', 'control')", name="ck_members_group"),
    )
    op.create_index("ix_members_customer_id", "members", ["customer_id"])
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("reason", NAME, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", NAME, nullable=False),
        sa.UniqueConstraint("customer_id"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("who", NAME, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("data_through", sa.Date(), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("n_treated", sa.Integer(), nullable=False),
        sa.Column("n_control", sa.Integer(), nullable=False),
        sa.Column("retained_treated", sa.Integer(), nullable=False),
        sa.Column("retained_control", sa.Integer(), nullable=False),
        sa.Column("spend_treated", sa.Double(), nullable=False),
        sa.Column("spend_control", sa.Double(), nullable=False),
        sa.UniqueConstraint("campaign_id", "data_through", "segment", name="uq_measurements_campaign_date_segment"),
    )


def downgrade() -> None:
    for table in ("measurements", "audit", "suppressions", "members", "campaigns"):
        op.drop_table(table)
