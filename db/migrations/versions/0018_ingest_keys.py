"""The key ledger: which copy of a message key ingest workers sharing a subscription
stored, so a repeat reaching another worker is a duplicate, not a second point.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_keys",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("boot", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),  # the device time it was stored with
        sa.Column("claimed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ingest_keys_claimed_at", "ingest_keys", ["claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_keys_claimed_at", table_name="ingest_keys")
    op.drop_table("ingest_keys")
