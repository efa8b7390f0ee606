"""The feedback loop: wear features of replaced filters with the state they were found in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filter_labels",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("replacement_id", sa.Integer, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("consumed", sa.Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["replacement_id"],
            ["filter_replacements.id"],
            name="fk_filter_labels_replacement_id_filter_replacements",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_filter_labels"),
        sa.UniqueConstraint("replacement_id", name="uq_filter_labels_replacement_id"),
    )


def downgrade() -> None:
    op.drop_table("filter_labels")
