"""The notifications outbox: every customer-facing message, proactive and never harassing.

A change that should tell the customer something (a job opened, slots offered, a visit
booked, the bill) queues a message in the same transaction (`enqueue`), so a message
is never lost or sent for a change that rolled back. `Outbox.deliver` sends what is
due through pluggable adapters (`service.delivery`), deciding at send time:

* **channel**: the customer's preferred one (app, phone, SMS) at the time of sending;
* **de-duplicated**: one message per key, ever (a kind and an order, plus what makes
  it new, e.g. the booked time); a retry, a race or a re-run never sends it twice;
* **quiet hours**: a message due in the customer's quiet hours (their time zone) is
  held until they end; only "technician on the way" for a visit they booked goes out;
* **weekly cap**: at most `weekly_cap` proactive messages (job opened, slots, rating
  request) per customer in any 7 days; more are suppressed, kept with the reason.
  Messages about a visit the customer booked (confirmation, on the way, the bill)
  are never capped;
* **retries**: a failed send is retried with doubling back-off, then marked failed
  with the adapter's error. A sender holds a lease on what it sends: two senders never
  send one message, and a crashed sender's messages are picked up after the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.tables import customers, notifications, technicians
from service.errors import ServiceError
from service.localtime import QuietHours
from service.messages import Kind, render

log = logging.getLogger(__name__)

PROACTIVE = frozenset(
    {
        Kind.JOB_OPENED,
        Kind.SLOT_PROPOSED,
        Kind.RATING_REQUEST,
        Kind.PACKAGE_RENEWAL,
        Kind.AIR_REPORT,
    }
)
# sent only to customers who keep the preference on (checked when it is due, so turning
# it off stops what is already queued)
OPTIONAL = {Kind.AIR_REPORT: "air_reports"}
NOT_HELD = frozenset({Kind.TECHNICIAN_ON_THE_WAY})


class DeliveryFailed(ServiceError):
    """An adapter could not hand the message over; it will be retried."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    id: int
    customer_id: str
    order_id: int | None
    kind: Kind
    channel: str  # app | phone | sms
    language: str
    phone: str | None
    email: str | None
    text: str
    data: dict[str, Any]


class Adapter(Protocol):
    """Hands a message to a channel; raises `DeliveryFailed` to have it retried."""

    async def send(self, message: OutboundMessage) -> None: ...


@dataclass(frozen=True, kw_only=True)
class NotifyPolicy:
    weekly_cap: int = 3
    capped: frozenset[Kind] = PROACTIVE
    not_held: frozenset[Kind] = NOT_HELD
    max_attempts: int = 5
    retry_after: timedelta = timedelta(minutes=1)  # doubled on every failure
    lease: timedelta = timedelta(minutes=5)


# -- queueing (inside the caller's transaction) --------------------------------------------
def enqueue(
    conn: Connection,
    *,
    customer_id: str | None,
    kind: Kind,
    data: Mapping[str, Any],
    now: datetime,
    order_id: int | None = None,
    key: str = "",
    not_before: datetime | None = None,
) -> int | None:
    """Queue a message; returns its id, or None when the same message was queued before
    (or the order has no customer to tell)."""
    if customer_id is None:
        return None
    dedupe_key = f"{kind.value}:{order_id if order_id is not None else '-'}" + (
        f":{key}" if key else ""
    )
    try:
        with conn.begin_nested():
            return int(
                conn.execute(
                    notifications.insert()
                    .values(
                        customer_id=customer_id,
                        order_id=order_id,
                        kind=kind.value,
                        dedupe_key=dedupe_key,
                        data={"order_id": order_id, **data},
                        created_at=now,
                        not_before=not_before or now,
                        status="pending",
                    )
                    .returning(notifications.c.id)
                ).scalar_one()
            )
    except sa.exc.IntegrityError:
        seen = conn.execute(
            sa.select(notifications.c.id).where(notifications.c.dedupe_key == dedupe_key)
        ).first()
        if seen is None:
            raise
        return None


def technician_name(conn: Connection, technician_id: str | None) -> str | None:
    if technician_id is None:
        return None
    name = conn.execute(
        sa.select(technicians.c.name).where(technicians.c.id == technician_id)
    ).scalar_one_or_none()
    return str(name) if name else technician_id


# -- delivery --------------------------------------------------------------------------------
@dataclass
class DeliveryReport:
    sent: int = 0
    held: int = 0  # quiet hours: will go when they end
    suppressed: int = 0  # weekly cap
    retrying: int = 0
    failed: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    customer_id: str
    order_id: int | None
    kind: Kind
    data: dict[str, Any]
    attempts: int
    channel: str
    language: str
    timezone: str
    quiet: QuietHours
    phone: str | None
    email: str | None
    wanted: bool = True  # the customer's preference for this kind of message


class Outbox:
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, Adapter],
        policy: NotifyPolicy | None = None,
    ) -> None:
        """`adapters` by channel (app, phone, sms); "*" serves any channel not listed."""
        self.db, self.adapters, self.policy = db, adapters, policy or NotifyPolicy()

    async def deliver(self, now: datetime | None = None, *, limit: int = 500) -> DeliveryReport:
        """Send what is due now; returns what happened to each message."""
        now = now or datetime.now(UTC)
        report = DeliveryReport()
        for msg in await asyncio.to_thread(self._claim, now, limit):
            outcome = await asyncio.to_thread(self._gate, msg, now)
            if outcome == "held":
                report.held += 1
                continue
            if outcome == "suppressed":
                report.suppressed += 1
                continue
            error = await self._send(msg)
            status = await asyncio.to_thread(self._record, msg, error, now)
            if status == "sent":
                report.sent += 1
                report.by_channel[msg.channel] = report.by_channel.get(msg.channel, 0) + 1
            elif status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
        return report

    def _claim(self, now: datetime, limit: int) -> list[_Claimed]:
        n = notifications
        free = sa.or_(n.c.claimed_until.is_(None), n.c.claimed_until < now)
        claimed: list[_Claimed] = []
        with self.db.engine.begin() as conn:
            rows = conn.execute(
                sa.select(n, customers)
                .join(customers, customers.c.id == n.c.customer_id)
                .where(n.c.status == "pending", n.c.not_before <= now, free)
                .order_by(n.c.not_before, n.c.id)
                .limit(limit)
            ).all()
            for r in rows:
                m = r._mapping
                won = conn.execute(
                    n.update()
                    .where(n.c.id == m[n.c.id], n.c.status == "pending", free)
                    .values(claimed_until=now + self.policy.lease)
                ).rowcount
                if won != 1:  # another sender took it
                    continue
                kind = Kind(m[n.c.kind])
                claimed.append(
                    _Claimed(
                        id=m[n.c.id],
                        customer_id=m[n.c.customer_id],
                        order_id=m[n.c.order_id],
                        kind=kind,
                        data=m[n.c.data],
                        attempts=m[n.c.attempts],
                        channel=m[customers.c.channel],
                        language=m[customers.c.language],
                        timezone=m[customers.c.timezone],
                        quiet=QuietHours.of(
                            m[customers.c.timezone],
                            m[customers.c.quiet_start],
                            m[customers.c.quiet_end],
                        ),
                        phone=m[customers.c.phone],
                        email=m[customers.c.email],
                        wanted=bool(m[customers.c[OPTIONAL[kind]]]) if kind in OPTIONAL else True,
                    )
                )
        return claimed

    def _gate(self, msg: _Claimed, now: datetime) -> str | None:
        """Hold it for quiet hours, suppress it over the weekly cap, or let it go (None)."""
        n = notifications
        quiet_end = None if msg.kind in self.policy.not_held else msg.quiet.until(now)
        with self.db.engine.begin() as conn:

            def suppress(why: str) -> str:
                conn.execute(
                    n.update()
                    .where(n.c.id == msg.id)
                    .values(status="suppressed", claimed_until=None, note=why)
                )
                return "suppressed"

            if not msg.wanted:
                return suppress("the customer turned this kind of message off")
            if quiet_end is not None:
                conn.execute(
                    n.update()
                    .where(n.c.id == msg.id)
                    .values(
                        not_before=quiet_end,
                        claimed_until=None,
                        note=f"held for quiet hours until {quiet_end.isoformat()}",
                    )
                )
                return "held"
            if msg.kind in self.policy.capped:
                sent = conn.execute(
                    sa.select(sa.func.count()).where(
                        n.c.customer_id == msg.customer_id,
                        n.c.status == "sent",
                        n.c.kind.in_([k.value for k in self.policy.capped]),
                        n.c.sent_at > now - timedelta(days=7),
                    )
                ).scalar_one()
                if sent >= self.policy.weekly_cap:
                    return suppress(f"weekly cap: {sent} proactive messages in the last 7 days")
        return None

    async def _send(self, msg: _Claimed) -> str | None:
        adapter = self.adapters.get(msg.channel) or self.adapters.get("*")
        if adapter is None:
            return f"no delivery adapter for channel {msg.channel!r}"
        out = OutboundMessage(
            id=msg.id,
            customer_id=msg.customer_id,
            order_id=msg.order_id,
            kind=msg.kind,
            channel=msg.channel,
            language=msg.language,
            phone=msg.phone,
            email=msg.email,
            text=render(msg.kind, msg.data, language=msg.language, timezone=msg.timezone),
            data=msg.data,
        )
        try:
            await adapter.send(out)
        except DeliveryFailed as e:
            return str(e)
        return None

    def _record(self, msg: _Claimed, error: str | None, now: datetime) -> str:
        n = notifications
        attempts = msg.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "claimed_until": None}
        if error is None:
            values |= {"status": "sent", "sent_at": now, "channel": msg.channel, "note": None}
        elif attempts >= self.policy.max_attempts:
            values |= {"status": "failed", "note": f"gave up after {attempts} attempts: {error}"}
        else:
            wait = self.policy.retry_after * 2 ** (attempts - 1)
            values |= {"not_before": now + wait, "note": f"attempt {attempts} failed: {error}"}
        with self.db.engine.begin() as conn:
            conn.execute(n.update().where(n.c.id == msg.id).values(**values))
        status = values.get("status", "retrying")
        if error is not None:
            log.warning(
                "notification not delivered",
                extra={"kv": {"id": msg.id, "channel": msg.channel, "error": error}},
            )
        return str(status)

    # -- reading -------------------------------------------------------------------------
    def messages(
        self,
        *,
        customer_id: str | None = None,
        order_id: int | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        n = notifications
        q = sa.select(n).order_by(n.c.id.desc()).limit(limit)
        if customer_id is not None:
            q = q.where(n.c.customer_id == customer_id)
        if order_id is not None:
            q = q.where(n.c.order_id == order_id)
        if status is not None:
            q = q.where(n.c.status == status)
        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
