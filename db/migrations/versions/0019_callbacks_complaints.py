"""Callbacks that gate the money, and complaint cases.

A callback now has an outcome (satisfied, not satisfied, unreachable) that an agent may
record without stars, the agent who called, and the customer's 0-10 recommendation;
every call that reached nobody is kept. Complaints are cases with a level, an SLA per
level and a history.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.alter_column("rating", existing_type=sa.Integer, nullable=True)
        batch.add_column(
            sa.Column("outcome", sa.String(16), nullable=False, server_default="satisfied")
        )
        batch.add_column(sa.Column("agent", sa.String(64)))
        batch.add_column(sa.Column("nps", sa.Integer))
        batch.create_check_constraint("ck_callbacks_nps", "nps BETWEEN 0 AND 10")
    # a rating that was a complaint did not satisfy
    op.execute("UPDATE callbacks SET outcome = 'not_satisfied' WHERE complaint")
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_callback_attempts_order", "callback_attempts", ["order_id"])
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
        sa.Column("device_id", sa.String(64)),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("outlet_id", sa.String(64)),
        sa.Column("technician_id", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolved_by", sa.String(64)),
        sa.Column("resolution", sa.Text),
        sa.Column("upheld", sa.Boolean),
    )
    op.create_index("ix_complaints_state_due", "complaints", ["state", "due_at"])
    op.create_index("ix_complaints_order", "complaints", ["order_id"])
    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("complaint_id", sa.Integer, sa.ForeignKey("complaints.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_complaint_events_complaint", "complaint_events", ["complaint_id"])


def downgrade() -> None:
    op.drop_index("ix_complaint_events_complaint", table_name="complaint_events")
    op.drop_table("complaint_events")
    op.drop_index("ix_complaints_order", table_name="complaints")
    op.drop_index("ix_complaints_state_due", table_name="complaints")
    op.drop_table("complaints")
    op.drop_index("ix_callback_attempts_order", table_name="callback_attempts")
    op.drop_table("callback_attempts")
    op.execute("DELETE FROM callbacks WHERE rating IS NULL")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_constraint("ck_callbacks_nps", type_="check")
        batch.drop_column("nps")
        batch.drop_column("agent")
        batch.drop_column("outcome")
        batch.alter_column("rating", existing_type=sa.Integer, nullable=False)
