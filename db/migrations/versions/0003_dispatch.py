"""Dispatch: declined_by, unassignable_reason, first_offer_accepted on work orders.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("declined_by", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("unassignable_reason", sa.Text))
        batch.add_column(sa.Column("first_offer_accepted", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("first_offer_accepted")
        batch.drop_column("unassignable_reason")
        batch.drop_column("declined_by")
