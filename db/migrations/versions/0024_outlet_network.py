"""The outlet network: regions above outlets, an outlet's hours to accept a job, its
fees per job type, the offers of jobs to outlets with their answers, and on each job the
outlet's answer and its fee.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("outlets") as batch:
        batch.add_column(sa.Column("region_id", sa.String(64)))
        batch.add_column(sa.Column("accept_hours", sa.Integer))
        batch.create_foreign_key("fk_outlets_region", "regions", ["region_id"], ["id"])
    op.create_table(
        "outlet_fees",
        sa.Column("outlet_id", sa.String(64), primary_key=True),
        sa.Column("job_type", sa.String(48), primary_key=True),
        sa.Column("cents", sa.Integer, nullable=False),
    )
    op.create_table(
        "outlet_offers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
        sa.Column("outlet_id", sa.String(64), sa.ForeignKey("outlets.id"), nullable=False),
        sa.Column("offered_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("decided_at", UTCDateTime),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_outlet_offers_order", "outlet_offers", ["order_id"])
    op.create_index("ix_outlet_offers_state", "outlet_offers", ["state", "due_at"])
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("outlet_state", sa.String(10)))
        batch.add_column(sa.Column("outlet_fee_cents", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("outlet_fee_cents")
        batch.drop_column("outlet_state")
    op.drop_index("ix_outlet_offers_state", "outlet_offers")
    op.drop_index("ix_outlet_offers_order", "outlet_offers")
    op.drop_table("outlet_offers")
    op.drop_table("outlet_fees")
    with op.batch_alter_table("outlets") as batch:
        batch.drop_constraint("fk_outlets_region", type_="foreignkey")
        batch.drop_column("accept_hours")
        batch.drop_column("region_id")
    op.drop_table("regions")
