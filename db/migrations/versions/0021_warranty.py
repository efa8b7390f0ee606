"""Warranty and who pays: terms per product model or device type, a device's purchase
date, and on every bill line who pays it (customer, maker under warranty, package).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warranty_terms",
        sa.Column("applies_to", sa.String(80), primary_key=True),
        sa.Column("parts_months", sa.Integer, nullable=False),
        sa.Column("labour_months", sa.Integer, nullable=False),
        sa.Column("free_visits", sa.Integer),
        sa.Column("starts", sa.String(16), nullable=False),
    )
    with op.batch_alter_table("device_sites") as batch:
        batch.add_column(sa.Column("purchased_on", sa.Date))
    for table in ("work_order_parts", "work_order_fees"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("payer", sa.String(8), nullable=False, server_default="customer")
            )
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("customer_cents", sa.Integer))
    # every bill so far was the customer's alone
    op.execute("UPDATE work_orders SET customer_cents = total_cents")


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("customer_cents")
    for table in ("work_order_fees", "work_order_parts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("payer")
    with op.batch_alter_table("device_sites") as batch:
        batch.drop_column("purchased_on")
    op.drop_table("warranty_terms")
