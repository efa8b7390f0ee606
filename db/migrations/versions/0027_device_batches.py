"""Each device's production batch and manufacture date, for quality analytics by batch.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("batch", sa.String(64)))
        batch.add_column(sa.Column("manufactured_on", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("manufactured_on")
        batch.drop_column("batch")
