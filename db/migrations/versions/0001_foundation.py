"""Foundation: device registry, device state, dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("model", sa.String(64)),
        sa.Column("serial", sa.String(64)),
        sa.Column("firmware", sa.String(64)),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_table(
        "device_state",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("online_source", sa.String(16), nullable=False),
        sa.Column("online_changed_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_ts", sa.BigInteger),
        sa.Column("last_received_at", UTCDateTime),
        sa.Column("boot", sa.BigInteger),
        sa.Column("seq", sa.BigInteger),
        sa.Column("firmware", sa.String(64)),
        sa.Column("latest_ts", sa.BigInteger),
        sa.Column("latest_metrics", sa.JSON, nullable=False),
        sa.Column("messages_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_state"),
    )
    op.create_index(
        "ix_device_state_online_received", "device_state", ["online", "last_received_at"]
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("payload_size", sa.Integer, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("device_type", sa.String(48)),
        sa.Column("device_id", sa.String(128)),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint("fingerprint", name="uq_dead_letters_fingerprint"),
    )
    op.create_index("ix_dead_letters_status_reason", "dead_letters", ["status", "reason"])
    op.create_index("ix_dead_letters_device", "dead_letters", ["device_id"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_index("ix_device_state_online_received", "device_state")
    op.drop_table("device_state")
    op.drop_table("devices")
