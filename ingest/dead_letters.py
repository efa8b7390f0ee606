"""Dead letters: every message ingest could not accept, with its reason, kept for replay."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import dead_letters
from db.upsert import insert_for

PENDING, REPLAYED, DISCARDED = "pending", "replayed", "discarded"


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    topic: str
    payload: bytes
    reason: str
    detail: str
    received_at: datetime
    device_type: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    fingerprint: str
    topic: str
    payload: bytes
    payload_size: int
    truncated: bool
    reason: str
    detail: str
    device_type: str | None
    device_id: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    count: int
    status: str
    resolved_at: datetime | None


def fingerprint(topic: str, payload: bytes) -> str:
    return hashlib.sha256(topic.encode("utf-8", "surrogateescape") + b"\0" + payload).hexdigest()


class DeadLetterRepository:
    def __init__(self, db: Database, *, max_payload_bytes: int = 256 * 1024) -> None:
        self.db = db
        self.max_payload_bytes = max_payload_bytes

    def _rows(self, letters: Sequence[NewDeadLetter]) -> list[dict[str, object]]:
        rows: dict[str, dict[str, object]] = {}
        for d in letters:
            fp = fingerprint(d.topic, d.payload)
            if fp in rows:  # the same bad message twice in one batch
                rows[fp]["count"] = int(rows[fp]["count"]) + 1  # type: ignore[call-overload]
                continue
            rows[fp] = {
                "fingerprint": fp,
                "topic": d.topic,
                "payload": d.payload[: self.max_payload_bytes],
                "payload_size": len(d.payload),
                "truncated": len(d.payload) > self.max_payload_bytes,
                "reason": d.reason,
                "detail": d.detail[:2000],
                "device_type": d.device_type,
                "device_id": d.device_id[:128] if d.device_id else None,
                "first_seen_at": d.received_at,
                "last_seen_at": d.received_at,
                "count": 1,
                "status": PENDING,
                "resolved_at": None,
            }
        return list(rows.values())

    def record(self, letters: Sequence[NewDeadLetter], conn: sa.Connection | None = None) -> None:
        """Keep the letters; one seen before counts again and is pending again."""
        if not letters:
            return
        rows = self._rows(letters)
        if conn is None:
            with self.db.engine.begin() as c:
                self._record(c, rows)
        else:
            self._record(conn, rows)

    def _record(self, conn: sa.Connection, rows: list[dict[str, object]]) -> None:
        stmt = insert_for(conn, dead_letters)
        stmt = stmt.on_conflict_do_update(
            index_elements=["fingerprint"],
            set_={
                "count": dead_letters.c.count + stmt.excluded["count"],
                "last_seen_at": stmt.excluded["last_seen_at"],
                "reason": stmt.excluded["reason"],
                "detail": stmt.excluded["detail"],
                "status": PENDING,
                "resolved_at": None,
            },
        )
        conn.execute(stmt, rows)

    def get(self, letter_id: int) -> DeadLetter:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(dead_letters).where(dead_letters.c.id == letter_id)
            ).first()
        if row is None:
            raise NotFound("dead letter", letter_id)
        return DeadLetter(**row._mapping)

    def list(
        self,
        *,
        status: str | None = PENDING,
        reason: str | None = None,
        device_id: str | None = None,
        ids: Sequence[int] | None = None,
        limit: int = 50,
        after_id: int = 0,
    ) -> list[DeadLetter]:
        q = sa.select(dead_letters).where(dead_letters.c.id > after_id)
        if status:
            q = q.where(dead_letters.c.status == status)
        if reason:
            q = q.where(dead_letters.c.reason == reason)
        if device_id:
            q = q.where(dead_letters.c.device_id == device_id)
        if ids is not None:
            q = q.where(dead_letters.c.id.in_(list(ids)))
        q = q.order_by(dead_letters.c.id).limit(limit)
        with self.db.engine.connect() as conn:
            return [DeadLetter(**r._mapping) for r in conn.execute(q)]

    def resolve(self, ids: Sequence[int], status: str, now: datetime | None = None) -> None:
        if not ids:
            return
        with self.db.engine.begin() as conn:
            conn.execute(
                dead_letters.update()
                .where(dead_letters.c.id.in_(list(ids)))
                .values(status=status, resolved_at=now or datetime.now(UTC))
            )

    def update_reason(self, letter_id: int, reason: str, detail: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                dead_letters.update()
                .where(dead_letters.c.id == letter_id)
                .values(reason=reason, detail=detail[:2000])
            )

    def counts(self, status: str | None = PENDING) -> dict[str, int]:
        """Dead letters per reason (messages, counting repeats)."""
        q = sa.select(dead_letters.c.reason, sa.func.sum(dead_letters.c.count)).group_by(
            dead_letters.c.reason
        )
        if status:
            q = q.where(dead_letters.c.status == status)
        with self.db.engine.connect() as conn:
            return {r: int(n) for r, n in conn.execute(q)}
