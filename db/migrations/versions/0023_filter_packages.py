"""Filter packages as a product: plans, the packages sold (one device's entitlement),
the package and fulfilment (visit or diy) of the jobs they pay, and the shipments of
diy filters.

A customer's old yes/no `filter_package` flag becomes a package per device on a plan
per device type ("legacy-<type>": every filter, as many as fall due, twelve months
from the upgrade, at no price), so nobody loses the cover they had.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    plans = op.create_table(
        "package_plans",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("applies_to", sa.String(80), nullable=False),
        sa.Column("covers", sa.JSON, nullable=False),
        sa.Column("replacements", sa.Integer),
        sa.Column("months", sa.Integer, nullable=False),
        sa.Column("price_cents", sa.Integer, nullable=False),
        sa.Column("diy", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    sold = op.create_table(
        "packages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sale_id", sa.String(64), nullable=False, unique=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("plan_id", sa.String(64), sa.ForeignKey("package_plans.id"), nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("covers", sa.JSON, nullable=False),
        sa.Column("replacements", sa.Integer),
        sa.Column("price_cents", sa.Integer, nullable=False),
        sa.Column("fulfilment", sa.String(8), nullable=False),
        sa.Column("preferred_days", sa.String(32)),
        sa.Column("preferred_from", sa.String(5)),
        sa.Column("preferred_to", sa.String(5)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sold_by", sa.String(64), nullable=False),
        sa.Column("sold_at", UTCDateTime, nullable=False),
        sa.Column("renews_id", sa.Integer, sa.ForeignKey("packages.id")),
        sa.Column("reminded_at", UTCDateTime),
    )
    op.create_index("ix_packages_device", "packages", ["device_id", "ends_on"])
    op.create_table(
        "shipments",
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), primary_key=True),
        sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("tracking", sa.String(64), nullable=False),
        sa.Column("shipped_at", UTCDateTime, nullable=False),
        sa.Column("shipped_by", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("package_id", sa.Integer))
        batch.add_column(sa.Column("fulfilment", sa.String(8)))
    _packages_from_the_flag(plans, sold)
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("filter_package")


def _packages_from_the_flag(plans: sa.Table, sold: sa.Table) -> None:
    conn = op.get_bind()
    flagged = conn.execute(
        sa.text(
            "SELECT d.id AS device_id, d.device_type, s.customer_id FROM devices d "
            "JOIN device_sites s ON s.device_id = d.id "
            "JOIN customers c ON c.id = s.customer_id WHERE c.filter_package = :yes"
        ),
        {"yes": True},
    ).all()
    if not flagged:
        return
    today = datetime.now(UTC).date()
    ends = date(today.year + 1, today.month, min(today.day, 28))
    now = datetime.now(UTC)
    for device_type in sorted({r.device_type for r in flagged}):
        conn.execute(
            plans.insert().values(
                id=f"legacy-{device_type}"[:64], name="Filter package (from before plans)",
                applies_to=f"type:{device_type}", covers=[], replacements=None, months=12,
                price_cents=0, diy=False, active=False,
            )
        )  # fmt: skip
    conn.execute(
        sold.insert(),
        [
            {
                "sale_id": f"legacy-{r.device_id}"[:64], "device_id": r.device_id,
                "customer_id": r.customer_id, "plan_id": f"legacy-{r.device_type}"[:64],
                "starts_on": today, "ends_on": ends, "covers": [], "replacements": None,
                "price_cents": 0, "fulfilment": "visit", "channel": "import",
                "sold_by": "migration", "sold_at": now,
            }
            for r in flagged
        ],
    )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("filter_package", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE customers SET filter_package = TRUE WHERE id IN (SELECT customer_id FROM packages)"
    )
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("fulfilment")
        batch.drop_column("package_id")
    op.drop_table("shipments")
    op.drop_index("ix_packages_device", "packages")
    op.drop_table("packages")
    op.drop_table("package_plans")
