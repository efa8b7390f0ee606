"""Photos attached when a job is reported, beside the technician's at completion: each
photo says which (its stage), who added it and when.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_order_photos") as batch:
        batch.add_column(
            sa.Column("stage", sa.String(12), nullable=False, server_default="completion")
        )
        batch.add_column(sa.Column("added_by", sa.String(64)))
        batch.add_column(sa.Column("added_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("work_order_photos") as batch:
        batch.drop_column("added_at")
        batch.drop_column("added_by")
        batch.drop_column("stage")
