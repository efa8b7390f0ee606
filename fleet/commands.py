"""The device-command outbox: commands written with the change that causes them (a
completed filter replacement, a repair), read and marked sent by the publisher."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from db.database import Database
from db.tables import device_commands


@dataclass(frozen=True, slots=True)
class PendingCommand:
    id: int
    device_id: str
    device_type: str
    cmd: str
    args: dict[str, Any]
    correlation: str | None


class CommandOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def pending(self, limit: int = 500) -> list[PendingCommand]:
        """Oldest first: a device gets its commands in the order they were decided."""
        q = (
            sa.select(device_commands)
            .where(device_commands.c.sent_at.is_(None))
            .order_by(device_commands.c.id)
            .limit(limit)
        )
        with self.db.engine.connect() as conn:
            return [
                PendingCommand(r.id, r.device_id, r.device_type, r.cmd, r.args, r.correlation)
                for r in conn.execute(q)
            ]

    def mark_sent(self, ids: list[int], *, now: datetime | None = None) -> None:
        if not ids:
            return
        with self.db.engine.begin() as conn:
            conn.execute(
                device_commands.update()
                .where(device_commands.c.id.in_(ids))
                .values(sent_at=now or datetime.now(UTC))
            )
