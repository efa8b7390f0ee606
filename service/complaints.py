"""Complaints (投诉): a case, not a low rating counted in a rate.

A case is opened by a callback that found the customer not satisfied (an agent's call or
the app's rating), by an agent for a caller, or by the customer in the app; it names the
job, the device, the customer, the outlet and the technician where there is a job. It
starts at the outlet, which has `ComplaintPolicy.hours["outlet"]` to resolve it; one not
resolved by then is escalated to the region, then to the maker, each level with its own
SLA. The resolution records whether the complaint was upheld: an upheld complaint
forfeits the job's held commission (`service.settlement`), one not upheld releases it.
A customer complaining again about a job whose case is open adds to that case.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import complaint_events, complaints, device_sites, territories, work_orders
from service.errors import ServiceError


class Level(StrEnum):
    OUTLET = "outlet"
    REGION = "region"
    MAKER = "maker"


class Source(StrEnum):
    RATING = "rating"  # the customer's low rating in the app
    CALLBACK = "callback"  # an agent's callback: not satisfied
    CALL = "call"  # the customer rang the call centre
    APP = "app"  # the customer complained in the app


ESCALATION = (Level.OUTLET, Level.REGION, Level.MAKER)
DEFAULT_HOURS: Mapping[str, int] = MappingProxyType({"outlet": 24, "region": 48, "maker": 72})


class ComplaintRefused(ServiceError):
    pass


@dataclass(frozen=True, kw_only=True)
class ComplaintPolicy:
    """Hours each level has to resolve a case before it goes up a level."""

    hours: Mapping[str, int] = field(default_factory=lambda: DEFAULT_HOURS)

    def sla(self, level: Level) -> timedelta:
        return timedelta(hours=self.hours[level.value])


@dataclass(frozen=True, slots=True)
class Complaint:
    id: int
    order_id: int | None
    device_id: str | None
    customer_id: str | None
    outlet_id: str | None
    technician_id: str | None
    source: str
    level: str
    state: str  # open | resolved
    description: str
    opened_by: str
    opened_at: datetime
    due_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    upheld: bool | None

    @property
    def open(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    at: datetime
    actor: str
    action: str  # opened | repeated | escalated | resolved
    level: str
    note: str


class Complaints:
    def __init__(self, db: Database, policy: ComplaintPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or ComplaintPolicy()

    # -- opening --------------------------------------------------------------------------
    def open(
        self,
        *,
        source: Source,
        description: str,
        actor: str,
        order_id: int | None = None,
        device_id: str | None = None,
        customer_id: str | None = None,
        now: datetime | None = None,
    ) -> Complaint:
        with self.db.engine.begin() as conn:
            return self.open_in(
                conn,
                source=source,
                description=description,
                actor=actor,
                order_id=order_id,
                device_id=device_id,
                customer_id=customer_id,
                now=now,
            )

    def open_in(
        self,
        conn: Connection,
        *,
        source: Source,
        description: str,
        actor: str,
        order_id: int | None = None,
        device_id: str | None = None,
        customer_id: str | None = None,
        now: datetime | None = None,
    ) -> Complaint:
        """Open a case about a job (which names device, customer, outlet and technician)
        or about a device; a second complaint about a job whose case is open is added to
        that case."""
        now = now or datetime.now(UTC)
        who: dict[str, object] = {"device_id": device_id, "customer_id": customer_id}
        if order_id is not None:
            order = conn.execute(
                sa.select(
                    work_orders.c.device_id,
                    work_orders.c.customer_id,
                    work_orders.c.outlet_id,
                    work_orders.c.technician_id,
                )
                .where(work_orders.c.id == order_id)
                .with_for_update()  # two complaints at once about one job: one case
            ).one_or_none()
            if order is None:
                raise NotFound("work order", str(order_id))
            who = dict(order._mapping)
            live = conn.execute(
                sa.select(complaints.c.id).where(
                    complaints.c.order_id == order_id, complaints.c.state == "open"
                )
            ).scalar_one_or_none()
            if live is not None:
                complaint = self.get_in(conn, live)
                self._event(conn, live, now, actor, "repeated", complaint.level, description)
                return complaint
        elif device_id is None:
            raise ComplaintRefused("a complaint is about a job (order_id) or a device (device_id)")
        else:  # the device's customer, and the outlet serving its territory
            site = conn.execute(
                sa.select(device_sites.c.customer_id, territories.c.outlet_id)
                .select_from(
                    device_sites.join(territories, territories.c.id == device_sites.c.territory_id)
                )
                .where(device_sites.c.device_id == device_id)
            ).one_or_none()
            if site is not None:
                who = {"device_id": device_id, **site._mapping}
        level = ESCALATION[0]
        cid = conn.execute(
            complaints.insert()
            .values(
                order_id=order_id,
                **who,
                source=source.value,
                level=level.value,
                state="open",
                description=description,
                opened_by=actor,
                opened_at=now,
                due_at=now + self.policy.sla(level),
            )
            .returning(complaints.c.id)
        ).scalar_one()
        self._event(conn, cid, now, actor, "opened", level.value, description)
        return self.get_in(conn, cid)

    # -- the case's life ------------------------------------------------------------------
    def escalate_due(self, now: datetime | None = None) -> list[Complaint]:
        """Raise every open case past its level's SLA one level (the maker's stay with the
        maker, overdue); returns the cases escalated."""
        now = now or datetime.now(UTC)
        out = []
        with self.db.engine.begin() as conn:
            due = conn.execute(
                sa.select(complaints.c.id, complaints.c.level)
                .where(
                    complaints.c.state == "open",
                    complaints.c.due_at <= now,
                    complaints.c.level != Level.MAKER.value,
                )
                .order_by(complaints.c.due_at)
                .with_for_update(skip_locked=True)
            ).all()
            for cid, level in due:
                up = ESCALATION[ESCALATION.index(Level(level)) + 1]
                conn.execute(
                    complaints.update()
                    .where(complaints.c.id == cid)
                    .values(level=up.value, due_at=now + self.policy.sla(up))
                )
                self._event(
                    conn, cid, now, "system", "escalated", up.value, f"unresolved at {level} level"
                )
                out.append(self.get_in(conn, cid))
        return out

    def resolve(
        self,
        complaint_id: int,
        *,
        resolution: str,
        upheld: bool,
        actor: str,
        now: datetime | None = None,
    ) -> Complaint:
        """Close the case with what was done, and whether the customer was right."""
        if not resolution.strip():
            raise ComplaintRefused("say how the complaint was resolved (resolution)")
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            done = conn.execute(
                complaints.update()
                .where(complaints.c.id == complaint_id, complaints.c.state == "open")
                .values(
                    state="resolved",
                    resolved_at=now,
                    resolved_by=actor,
                    resolution=resolution,
                    upheld=upheld,
                )
            ).rowcount
            complaint = self.get_in(conn, complaint_id)
            if not done:
                raise ComplaintRefused(
                    f"complaint {complaint_id} was resolved already, at "
                    f"{complaint.resolved_at:%Y-%m-%d %H:%M} by {complaint.resolved_by}"
                )
            verdict = "upheld" if upheld else "not upheld"
            self._event(
                conn,
                complaint_id,
                now,
                actor,
                "resolved",
                complaint.level,
                f"{verdict}: {resolution}",
            )
            return complaint

    # -- reading --------------------------------------------------------------------------
    def get(self, complaint_id: int) -> Complaint:
        with self.db.engine.connect() as conn:
            return self.get_in(conn, complaint_id)

    def get_in(self, conn: Connection, complaint_id: int) -> Complaint:
        row = conn.execute(
            sa.select(complaints).where(complaints.c.id == complaint_id)
        ).one_or_none()
        if row is None:
            raise NotFound("complaint", str(complaint_id))
        return Complaint(**row._mapping)

    def find(
        self,
        *,
        state: str | None = None,
        level: str | None = None,
        outlet_id: str | None = None,
        customer_id: str | None = None,
        order_id: int | None = None,
        outlets: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[Complaint]:
        """Cases, the most urgent open ones first; `outlets`: only theirs."""
        q = sa.select(complaints)
        if outlets is not None:
            q = q.where(complaints.c.outlet_id.in_(sorted(outlets)))
        for column, value in (
            (complaints.c.state, state),
            (complaints.c.level, level),
            (complaints.c.outlet_id, outlet_id),
            (complaints.c.customer_id, customer_id),
            (complaints.c.order_id, order_id),
        ):
            if value is not None:
                q = q.where(column == value)
        q = q.order_by(complaints.c.state, complaints.c.due_at, complaints.c.id).limit(limit)
        with self.db.engine.connect() as conn:
            return [Complaint(**r._mapping) for r in conn.execute(q)]

    def history(self, complaint_id: int) -> list[ComplaintEvent]:
        with self.db.engine.connect() as conn:
            self.get_in(conn, complaint_id)
            rows = conn.execute(
                sa.select(
                    complaint_events.c.at,
                    complaint_events.c.actor,
                    complaint_events.c.action,
                    complaint_events.c.level,
                    complaint_events.c.note,
                )
                .where(complaint_events.c.complaint_id == complaint_id)
                .order_by(complaint_events.c.id)
            )
            return [ComplaintEvent(**r._mapping) for r in rows]

    @staticmethod
    def _event(
        conn: Connection, cid: int, at: datetime, actor: str, action: str, level: str, note: str
    ) -> None:
        conn.execute(
            complaint_events.insert().values(
                complaint_id=cid, at=at, actor=actor, action=action, level=level, note=note
            )
        )
