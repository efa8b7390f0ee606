"""Models: predictions with their band and version, wear state, anomaly scores, and the
filter state technicians find (a label for the next training).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("filter_predictions") as batch:
        batch.add_column(sa.Column("low", UTCDateTime))
        batch.add_column(sa.Column("high", UTCDateTime))
        batch.add_column(sa.Column("consumed", sa.Float))
        batch.add_column(sa.Column("rated_at", UTCDateTime))
        batch.add_column(sa.Column("model_version", sa.String(64)))
    with op.batch_alter_table("filter_replacements") as batch:
        batch.add_column(sa.Column("consumed_found", sa.Float))
    op.create_table(
        "wear_states",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("scored_until", UTCDateTime, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_wear_states"),
    )
    op.create_table(
        "model_scores",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(48), nullable=False),
        sa.Column("output", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float),
        sa.Column("model_version", sa.String(64)),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "model", "output", name="pk_model_scores"),
    )


def downgrade() -> None:
    op.drop_table("model_scores")
    op.drop_table("wear_states")
    with op.batch_alter_table("filter_replacements") as batch:
        batch.drop_column("consumed_found")
    with op.batch_alter_table("filter_predictions") as batch:
        for c in ("model_version", "rated_at", "consumed", "high", "low"):
            batch.drop_column(c)
