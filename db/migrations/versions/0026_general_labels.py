"""The general detector's fault namer: what each device's last alarm showed, and the
technicians' verdicts on those alarms with it.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("detector_states") as batch:
        batch.add_column(sa.Column("evidence", sa.JSON))
    op.create_table(
        "general_labels",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("service_label_id", sa.Integer, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_label_id"],
            ["service_labels.id"],
            name="fk_general_labels_service_label_id_service_labels",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_general_labels"),
        sa.UniqueConstraint("service_label_id", name="uq_general_labels_service_label_id"),
    )
    op.create_index("ix_general_labels_type", "general_labels", ["device_type"])


def downgrade() -> None:
    op.drop_index("ix_general_labels_type", table_name="general_labels")
    op.drop_table("general_labels")
    with op.batch_alter_table("detector_states") as batch:
        batch.drop_column("evidence")
