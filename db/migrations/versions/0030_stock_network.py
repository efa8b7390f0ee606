"""Stock at every level: central and distribution depots above the outlets and vans,
the ledger of stock moves, and the sales plan.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "depots",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.String(64), sa.ForeignKey("depots.id")),
        sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id")),
        sa.Column("lead_days", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_depots"),
        sa.CheckConstraint("level IN ('central', 'distribution')", name="ck_depots_level"),
    )
    op.create_table(
        "depot_stock",
        sa.Column("depot_id", sa.String(64), sa.ForeignKey("depots.id"), nullable=False),
        sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("depot_id", "sku", name="pk_depot_stock"),
        sa.CheckConstraint("qty >= 0", name="ck_depot_stock_qty"),
    )
    with op.batch_alter_table("outlets") as batch:
        batch.add_column(sa.Column("depot_id", sa.String(64)))
        batch.add_column(sa.Column("supply_days", sa.Integer))
    op.create_table(
        "stock_moves",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("from_location", sa.String(80)),
        sa.Column("to_location", sa.String(80)),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_stock_moves"),
    )
    op.create_index("ix_stock_moves_sku_at", "stock_moves", ["sku", "at"])
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("received", sa.Integer, nullable=False, server_default="0"),
        sa.Column("destination", sa.String(80), nullable=False),
        sa.Column("expected_on", sa.Date, nullable=False),
        sa.Column("reference", sa.String(64)),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("ordered_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_purchase_orders"),
        sa.CheckConstraint("qty > 0", name="ck_purchase_orders_qty"),
        sa.CheckConstraint("received >= 0", name="ck_purchase_orders_received"),
    )
    op.create_table(
        "sales_plan",
        sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("week", sa.Date, nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("region_id", "model", "week", name="pk_sales_plan"),
        sa.CheckConstraint("units >= 0", name="ck_sales_plan_units"),
    )


def downgrade() -> None:
    op.drop_table("sales_plan")
    op.drop_table("purchase_orders")
    op.drop_index("ix_stock_moves_sku_at", "stock_moves")
    op.drop_table("stock_moves")
    with op.batch_alter_table("outlets") as batch:
        batch.drop_column("supply_days")
        batch.drop_column("depot_id")
    op.drop_table("depot_stock")
    op.drop_table("depots")
