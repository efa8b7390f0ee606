"""Callback and settlement: ratings, and the commission fixed at completion.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_callbacks_rating"),
        sa.PrimaryKeyConstraint("order_id", name="pk_callbacks"),
    )
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("commission_cents", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("commission_cents")
    op.drop_table("callbacks")
