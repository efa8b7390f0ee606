"""service domain: registry, work orders, audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=128), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("filter_package", sa.Boolean(), nullable=False),
        sa.Column("butler_technician_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "outlets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outlets")),
    )
    op.create_table(
        "parts",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("device_type", sa.String(length=48), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_parts")),
    )
    op.create_table(
        "outlet_stock",
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.CheckConstraint("qty >= 0", name="ck_outlet_stock_qty"),
        sa.ForeignKeyConstraint(
            ["outlet_id"],
            ["outlets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["parts.sku"],
        ),
        sa.PrimaryKeyConstraint("outlet_id", "sku", name=op.f("pk_outlet_stock")),
    )
    op.create_table(
        "technicians",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("working_hours", sa.JSON(), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outlet_id"],
            ["outlets.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicians")),
    )
    op.create_table(
        "territories",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["outlet_id"],
            ["outlets.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_territories")),
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("device_type", sa.String(length=48), nullable=False),
        sa.Column("problem_kind", sa.String(length=48), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("territory_id", sa.String(length=64), nullable=True),
        sa.Column("outlet_id", sa.String(length=64), nullable=True),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("evidence_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("scheduled_start", UTCDateTime, nullable=True),
        sa.Column("scheduled_end", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.create_index("ix_work_orders_state", ["state"], unique=False)
        batch_op.create_index(
            "ix_work_orders_technician_state", ["technician_id", "state"], unique=False
        )
        batch_op.create_index(
            "uq_work_orders_live_problem",
            ["device_id", "problem_kind"],
            unique=True,
            sqlite_where=sa.text(
                "state IN ('proposed','open','assigned','accepted','scheduled','in_progress','on_hold')"
            ),
            postgresql_where=sa.text(
                "state IN ('proposed','open','assigned','accepted','scheduled','in_progress','on_hold')"
            ),
        )

    op.create_table(
        "device_sites",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("territory_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=256), nullable=False),
        sa.Column("installed_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_sites")),
    )
    op.create_table(
        "technician_skills",
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("device_type", sa.String(length=48), nullable=False),
        sa.Column("problem_kind", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
        ),
        sa.PrimaryKeyConstraint(
            "technician_id", "device_type", "problem_kind", name=op.f("pk_technician_skills")
        ),
    )
    op.create_table(
        "technician_territories",
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("territory_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
        ),
        sa.PrimaryKeyConstraint(
            "technician_id", "territory_id", name=op.f("pk_technician_territories")
        ),
    )
    op.create_table(
        "van_stock",
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.CheckConstraint("qty >= 0", name="ck_van_stock_qty"),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["parts.sku"],
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
        ),
        sa.PrimaryKeyConstraint("technician_id", "sku", name=op.f("pk_van_stock")),
    )
    op.create_table(
        "work_order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_events")),
    )
    with op.batch_alter_table("work_order_events", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_events_order", ["order_id"], unique=False)

    op.create_table(
        "work_order_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_evidence")),
    )
    with op.batch_alter_table("work_order_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_evidence_order", ["order_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("work_order_evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_evidence_order")

    op.drop_table("work_order_evidence")
    with op.batch_alter_table("work_order_events", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_events_order")

    op.drop_table("work_order_events")
    op.drop_table("van_stock")
    op.drop_table("technician_territories")
    op.drop_table("technician_skills")
    op.drop_table("device_sites")
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_work_orders_live_problem",
            sqlite_where=sa.text(
                "state IN ('proposed','open','assigned','accepted','scheduled','in_progress','on_hold')"
            ),
            postgresql_where=sa.text(
                "state IN ('proposed','open','assigned','accepted','scheduled','in_progress','on_hold')"
            ),
        )
        batch_op.drop_index("ix_work_orders_technician_state")
        batch_op.drop_index("ix_work_orders_state")

    op.drop_table("work_orders")
    op.drop_table("territories")
    op.drop_table("technicians")
    op.drop_table("outlet_stock")
    op.drop_table("parts")
    op.drop_table("outlets")
    op.drop_table("customers")
