"""Appointments offered, the notifications outbox, predicted filter exhaustions; how an
order was resolved and whether a callback was a complaint (for the KPIs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("resolution", sa.String(32)))
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(
            sa.Column("complaint", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "appointment_offers",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
        sa.Column("technician_id", sa.String(64), nullable=False),
        sa.Column("slot_start", UTCDateTime, nullable=False),
        sa.Column("slot_end", UTCDateTime, nullable=False),
        sa.Column("offered_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_appointment_offers"),
    )
    op.create_index("ix_appointment_offers_order", "appointment_offers", ["order_id", "status"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("not_before", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("channel", sa.String(8)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("sent_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
    )
    op.create_index("ix_notifications_status_due", "notifications", ["status", "not_before"])
    op.create_index("ix_notifications_customer_sent", "notifications", ["customer_id", "sent_at"])
    op.create_table(
        "filter_predictions",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("exhausted_at", UTCDateTime, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("probability >= 0 AND probability <= 1", name="ck_filter_predictions_p"),
        sa.PrimaryKeyConstraint("device_id", "stage", name="pk_filter_predictions"),
    )


def downgrade() -> None:
    op.drop_table("filter_predictions")
    op.drop_index("ix_notifications_customer_sent", table_name="notifications")
    op.drop_index("ix_notifications_status_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_appointment_offers_order", table_name="appointment_offers")
    op.drop_table("appointment_offers")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("complaint")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("resolution")
