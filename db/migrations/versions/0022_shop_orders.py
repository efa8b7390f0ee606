"""Shop orders for installations, kept by the shop's own order id so a resend is the
same job.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_orders",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("shop_order_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shop_orders")
