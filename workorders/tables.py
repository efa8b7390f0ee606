"""Table definitions (SQLAlchemy Core). Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("model", sa.String(64)),
    sa.Column("serial", sa.String(64)),
    sa.Column("firmware", sa.String(64)),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("registered_at", UTCDateTime, nullable=False),
)

device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("online_source", sa.String(16), nullable=False),  # status | telemetry | silence
    sa.Column("online_changed_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_ts", sa.BigInteger),  # device time of the newest message, epoch ms
    sa.Column("last_received_at", UTCDateTime),  # our clock: silence is judged on this
    sa.Column("boot", sa.BigInteger),
    sa.Column("seq", sa.BigInteger),
    sa.Column("firmware", sa.String(64)),
    sa.Column("latest_ts", sa.BigInteger),
    sa.Column("latest_metrics", sa.JSON, nullable=False),
    sa.Column("messages_total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_device_state_online_received", "online", "last_received_at"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # sha256 of topic + payload: the same bad message seen again bumps `count`
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
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
    sa.Column("status", sa.String(16), nullable=False),  # pending | replayed | discarded
    sa.Column("resolved_at", UTCDateTime),
    sa.Index("ix_dead_letters_status_reason", "status", "reason"),
    sa.Index("ix_dead_letters_device", "device_id"),
)
