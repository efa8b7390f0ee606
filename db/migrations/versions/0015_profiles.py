"""Product profiles: every imported version of each family's profile.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("name", sa.String(48), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("checksum", sa.String(16), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_profiles"),
    )


def downgrade() -> None:
    op.drop_table("profiles")
