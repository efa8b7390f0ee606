"""The fault feedback loop: health deviations of devices with a technician's verdict.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_labels",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("service_label_id", sa.Integer, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("deviations", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_label_id"],
            ["service_labels.id"],
            name="fk_health_labels_service_label_id_service_labels",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_health_labels"),
        sa.UniqueConstraint("service_label_id", name="uq_health_labels_service_label_id"),
    )


def downgrade() -> None:
    op.drop_table("health_labels")
