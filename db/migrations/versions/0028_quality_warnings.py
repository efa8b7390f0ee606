"""The quality early warnings raised: one per batch or firmware, for R&D.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_warnings",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("peers_failures", sa.Integer, nullable=False),
        sa.Column("rate_ratio", sa.Float),
        sa.Column("p_value", sa.Float, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_warnings"),
        sa.UniqueConstraint("by", "group", name="uq_quality_warnings_by"),
    )


def downgrade() -> None:
    op.drop_table("quality_warnings")
