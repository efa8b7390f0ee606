"""Work orders: open (or attach to the live one), move through the lifecycle, read back.

Every change is a compare-and-set on the order's state and version, in one transaction
with its audit event: two dispatchers racing for one order get one winner and one
`ConcurrentChange`; two detectors racing to open one problem get one order (the database's
partial unique index decides) and the loser's evidence attached to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import (
    customers,
    device_sites,
    devices,
    outlets,
    territories,
    work_order_events,
    work_order_evidence,
    work_orders,
)
from service.errors import ConcurrentChange, InvalidTransition
from service.lifecycle import LIVE, Origin, State, initial_state, verb
from service.messages import Kind
from service.notifications import enqueue, technician_name
from service.offers import offer_in
from service.packages import entitlement_in
from service.sla import SlaPolicy, SlaStatus


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    """A problem on a device, from a rule, a model, the app, a call or ops."""

    device_id: str
    problem_kind: str  # e.g. filter_replacement, refrigerant_leak
    origin: Origin
    source: str  # the rule or model, "app", the caller's name
    title: str
    description: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    due_at: datetime | None = None  # e.g. before the predicted exhaustion


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: int
    device_id: str
    device_type: str
    problem_kind: str
    origin: Origin
    state: State
    version: int
    title: str
    description: str
    customer_id: str | None
    territory_id: str | None
    outlet_id: str | None
    technician_id: str | None
    priority: int
    evidence_count: int
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    not_after: datetime | None  # the requester's own deadline: the due time's cap
    sla_started_at: datetime | None  # None: a proposal whose clock starts at approval
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    closed_at: datetime | None
    completed_at: datetime | None
    outcome: str | None
    confirmed_serial: str | None
    total_cents: int | None
    customer_cents: int | None
    notes: str | None
    commission_cents: int | None
    resolution: str | None
    declined_by: list[str]
    unassignable_reason: str | None
    first_offer_accepted: bool | None
    package_id: int | None  # the filter package that pays it
    fulfilment: str | None  # None or visit: a technician's visit; diy: a shipped filter
    outlet_state: str | None  # None: its outlet takes jobs at once; offered|accepted|declined
    outlet_fee_cents: int | None  # what the maker pays the outlet, fixed at completion

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> WorkOrder:
        m = dict(row._mapping)
        m["origin"], m["state"] = Origin(m["origin"]), State(m["state"])
        return cls(**m)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: datetime
    actor: str
    action: str
    from_state: State | None
    to_state: State
    reason: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Opened:
    order: WorkOrder
    created: bool  # False: attached as evidence to the live order for the same problem


class WorkOrders:
    """The service interface rules, models and the API call. No SQL outside this room."""

    def __init__(self, db: Database, *, sla: SlaPolicy | None = None) -> None:
        self.db = db
        self.sla = sla or SlaPolicy()

    # -- intake ------------------------------------------------------------------------
    def open_or_attach(
        self, request: OrderRequest, *, actor: str = "system", now: datetime | None = None
    ) -> Opened:
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            return self.open_or_attach_in(conn, request, actor=actor, now=now)

    def open_or_attach_in(
        self, conn: Connection, request: OrderRequest, *, actor: str, now: datetime
    ) -> Opened:
        """`open_or_attach` inside the caller's transaction (a shop order registers the
        device and opens its installation together: all or nothing)."""
        live = self._live(conn, request.device_id, request.problem_kind)
        if live is not None:
            return Opened(self._attach(conn, live, request, now), created=False)
        try:
            with conn.begin_nested():  # a savepoint: losing the race keeps the transaction
                order_id = self._insert(conn, request, actor, now)
        except sa.exc.IntegrityError:
            live = self._live(conn, request.device_id, request.problem_kind)
            if live is None:
                raise  # not the uniqueness race: a real integrity error
            return Opened(self._attach(conn, live, request, now), created=False)
        return Opened(self._get(conn, order_id), created=True)

    def _insert(self, conn: Connection, r: OrderRequest, actor: str, now: datetime) -> int:
        device = conn.execute(
            sa.select(devices.c.device_type).where(devices.c.id == r.device_id)
        ).first()
        if device is None:
            raise NotFound("device", r.device_id)
        site = self._site(conn, r.device_id)
        state = initial_state(r.origin)
        # a filter package pays a replacement it covers, and its sale already said yes:
        # ops have nothing to review, and the job goes straight to dispatch (or, diy, to
        # shipping)
        package = (
            entitlement_in(conn, r.device_id, r.problem_kind, now.astimezone(UTC).date())
            if site is not None
            else None
        )
        packaged = state is State.PROPOSED and package is not None
        if packaged:
            state = State.OPEN
        # a proposal waits for ops: where the policy says so, its clock starts at approval
        # and until then only the requester's own deadline stands
        started = state is not State.PROPOSED or not self.sla.starts_at_approval(r.origin)
        due = self._due(site, r.problem_kind, now, r.due_at) if started else r.due_at
        order_id = conn.execute(
            work_orders.insert()
            .values(
                device_id=r.device_id,
                device_type=device.device_type,
                problem_kind=r.problem_kind,
                origin=r.origin.value,
                state=state.value,
                version=1,
                title=r.title,
                description=r.description,
                customer_id=site.customer_id if site else None,
                territory_id=site.territory_id if site else None,
                outlet_id=site.outlet_id if site else None,
                priority=r.priority,
                evidence_count=1,
                created_at=now,
                updated_at=now,
                due_at=due,
                not_after=r.due_at,
                sla_started_at=now if started else None,
                package_id=package.id if package else None,
                fulfilment=package.fulfilment.value if package else None,
            )
            .returning(work_orders.c.id)
        ).scalar_one()
        self._evidence(conn, order_id, r, now)
        why = (
            f"{r.title} (the customer's filter package covers it: no review)"
            if packaged
            else r.title
        )
        self._audit(conn, order_id, now, actor, "open", None, state, why, {"origin": r.origin})
        if state is State.OPEN:  # its outlet sees it first, where the outlet accepts jobs
            offer_in(conn, int(order_id), site.outlet_id if site else None, now)
        diy = package is not None and package.fulfilment == "diy"
        # the customer hears at once (a diy one when its filter ships); a proposal waits
        if state is State.OPEN and not diy:
            self.tell_in(conn, self._get(conn, order_id), Kind.JOB_OPENED, now)
        return int(order_id)

    @staticmethod
    def _site(conn: Connection, device_id: str) -> Any:
        """The device's customer, territory, outlet, the customer's tier and the outlet's
        time zone (None for a device not installed at a site)."""
        return conn.execute(
            sa.select(
                device_sites.c.customer_id,
                device_sites.c.territory_id,
                territories.c.outlet_id,
                customers.c.tier,
                outlets.c.timezone,
            )
            .join(territories, territories.c.id == device_sites.c.territory_id)
            .join(outlets, outlets.c.id == territories.c.outlet_id)
            .join(customers, customers.c.id == device_sites.c.customer_id)
            .where(device_sites.c.device_id == device_id)
        ).first()

    def _due(
        self,
        site: Any,
        problem_kind: str,
        started: datetime,
        not_after: datetime | None,
    ) -> datetime:
        return self.sla.due(
            problem_kind=problem_kind,
            tier=site.tier if site else "standard",
            opened=started,
            timezone=site.timezone if site else "UTC",
            not_after=not_after,
        )

    def _attach(
        self, conn: Connection, order: WorkOrder, r: OrderRequest, now: datetime
    ) -> WorkOrder:
        self._evidence(conn, order.id, r, now)
        conn.execute(
            work_orders.update()
            .where(work_orders.c.id == order.id)
            .values(evidence_count=work_orders.c.evidence_count + 1, updated_at=now)
        )
        return self._get(conn, order.id)

    @staticmethod
    def _evidence(conn: Connection, order_id: int, r: OrderRequest, now: datetime) -> None:
        conn.execute(
            work_order_evidence.insert().values(
                order_id=order_id,
                at=now,
                origin=r.origin.value,
                source=r.source,
                data=dict(r.evidence),
            )
        )

    # -- lifecycle ---------------------------------------------------------------------
    def transition(
        self,
        order_id: int,
        to: State,
        *,
        actor: str,
        reason: str = "",
        expect: State | None = None,
        now: datetime | None = None,
        **changes: Any,
    ) -> WorkOrder:
        """Move an order to `to`. Refused with `InvalidTransition` (naming the state and the
        allowed moves) when the lifecycle does not allow it, with `ConcurrentChange` when
        someone else changed the order first (or it is no longer in `expect`)."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            return self.transition_in(
                conn, order_id, to, actor=actor, reason=reason, expect=expect, now=now, **changes
            )

    def transition_in(
        self,
        conn: Connection,
        order_id: int,
        to: State,
        *,
        actor: str,
        reason: str,
        expect: State | None,
        now: datetime,
        **changes: Any,
    ) -> WorkOrder:
        """`transition` inside the caller's transaction (completion writes stock, labels
        and commands with it: all or nothing)."""
        order = self._get(conn, order_id)
        if expect is not None and order.state is not expect:
            raise ConcurrentChange(order_id, expected=expect, found=order.state)
        action = verb(order.state, to)
        if action is None:
            raise InvalidTransition(order_id, order.state, to)
        values: dict[str, Any] = {"state": to.value, "updated_at": now, **changes}
        if to in (State.CLOSED, State.REJECTED, State.CANCELLED):
            values["closed_at"] = now
        if to is State.COMPLETED:
            values["completed_at"] = now
        if to is State.OPEN:
            values.setdefault("technician_id", None)  # back to dispatch
        if to is State.ASSIGNED:
            values.setdefault("unassignable_reason", None)
        if order.sla_started_at is None and to is State.OPEN:  # approved: the clock starts
            site = self._site(conn, order.device_id)
            values["due_at"] = self._due(site, order.problem_kind, now, order.not_after)
            values["sla_started_at"] = now
        done = conn.execute(
            work_orders.update()
            .where(work_orders.c.id == order_id, work_orders.c.version == order.version)
            .values(version=order.version + 1, **values)
        ).rowcount
        if done != 1:  # changed between our read and our write
            raise ConcurrentChange(order_id, expected=order.state, found=None)
        data = {k: _jsonable(v) for k, v in changes.items()}
        self._audit(conn, order_id, now, actor, action, order.state, to, reason, data)
        if order.state is State.PROPOSED and to is State.OPEN:
            offer_in(conn, order_id, order.outlet_id, now)
        moved = self._get(conn, order_id)
        if order.state is State.PROPOSED and to is State.OPEN:
            self.tell_in(conn, moved, Kind.JOB_OPENED, now)
        if to is State.SCHEDULED and moved.scheduled_start is not None:
            start = moved.scheduled_start.isoformat()
            self.tell_in(conn, moved, Kind.APPOINTMENT_CONFIRMED, now, key=start, start=start)
        return moved

    def audit_in(
        self,
        conn: Connection,
        order: WorkOrder,
        now: datetime,
        actor: str,
        action: str,
        reason: str,
    ) -> None:
        """Record something that happened to an order without moving it (e.g. on the way)."""
        self._audit(conn, order.id, now, actor, action, order.state, order.state, reason, {})

    def tell_in(
        self,
        conn: Connection,
        order: WorkOrder,
        kind: Kind,
        now: datetime,
        *,
        key: str = "",
        not_before: datetime | None = None,
        **data: Any,
    ) -> None:
        """Queue a message to the order's customer, in this transaction."""
        enqueue(
            conn,
            customer_id=order.customer_id,
            kind=kind,
            order_id=order.id,
            key=key,
            now=now,
            not_before=not_before,
            data={
                "title": order.title,
                "device_type": order.device_type,
                "technician": technician_name(conn, order.technician_id),
                **data,
            },
        )

    @staticmethod
    def _audit(
        conn: Connection,
        order_id: int,
        now: datetime,
        actor: str,
        action: str,
        frm: State | None,
        to: State,
        reason: str,
        data: dict[str, Any],
    ) -> None:
        conn.execute(
            work_order_events.insert().values(
                order_id=order_id,
                at=now,
                actor=actor,
                action=action,
                from_state=frm.value if frm else None,
                to_state=to.value,
                reason=reason,
                data={k: _jsonable(v) for k, v in data.items()},
            )
        )

    # -- reading -----------------------------------------------------------------------
    def get(self, order_id: int) -> WorkOrder:
        with self.db.engine.connect() as conn:
            return self._get(conn, order_id)

    def get_in(self, conn: Connection, order_id: int) -> WorkOrder:
        return self._get(conn, order_id)

    def history(self, order_id: int) -> list[AuditEvent]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(work_order_events)
                .where(work_order_events.c.order_id == order_id)
                .order_by(work_order_events.c.id)
            )
            return [
                AuditEvent(
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    from_state=State(r.from_state) if r.from_state else None,
                    to_state=State(r.to_state),
                    reason=r.reason,
                    data=r.data,
                )
                for r in rows
            ]

    def evidence(self, order_id: int) -> list[dict[str, Any]]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(work_order_evidence)
                .where(work_order_evidence.c.order_id == order_id)
                .order_by(work_order_evidence.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def evidence_for(self, order_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The evidence of many orders at once (a page of the queue), by order id."""
        out: dict[int, list[dict[str, Any]]] = {}
        ids = list(order_ids)
        with self.db.engine.connect() as conn:
            for k in range(0, len(ids), 1000):
                rows = conn.execute(
                    sa.select(work_order_evidence)
                    .where(work_order_evidence.c.order_id.in_(ids[k : k + 1000]))
                    .order_by(work_order_evidence.c.id)
                )
                for r in rows:
                    out.setdefault(r.order_id, []).append(dict(r._mapping))
        return out

    def live_for(self, device_id: str, problem_kind: str) -> WorkOrder | None:
        with self.db.engine.connect() as conn:
            return self._live(conn, device_id, problem_kind)

    def find(
        self, *, states: set[State] | None = None, limit: int = 100, offset: int = 0
    ) -> list[WorkOrder]:
        q = sa.select(work_orders).order_by(work_orders.c.id).limit(limit).offset(offset)
        if states:
            q = q.where(work_orders.c.state.in_([s.value for s in states]))
        with self.db.engine.connect() as conn:
            return [WorkOrder.from_row(r) for r in conn.execute(q)]

    def sla_status(self, order: WorkOrder, now: datetime | None = None) -> SlaStatus:
        return self.sla.status(
            due_at=order.due_at, completed_at=order.completed_at, now=now or datetime.now(UTC)
        )

    def sla_board(self, now: datetime | None = None) -> list[tuple[WorkOrder, SlaStatus]]:
        """Live orders breached or at risk, most overdue first: what ops chase."""
        now = now or datetime.now(UTC)
        q = (
            sa.select(work_orders)
            .where(
                work_orders.c.state.in_([s.value for s in LIVE]),
                work_orders.c.due_at <= now + self.sla.at_risk,
            )
            .order_by(work_orders.c.due_at, work_orders.c.id)
        )
        with self.db.engine.connect() as conn:
            orders = [WorkOrder.from_row(r) for r in conn.execute(q)]
        return [(o, self.sla_status(o, now)) for o in orders]

    @staticmethod
    def _get(conn: Connection, order_id: int) -> WorkOrder:
        row = conn.execute(sa.select(work_orders).where(work_orders.c.id == order_id)).first()
        if row is None:
            raise NotFound("work order", order_id)
        return WorkOrder.from_row(row)

    @staticmethod
    def _live(conn: Connection, device_id: str, problem_kind: str) -> WorkOrder | None:
        row = conn.execute(
            sa.select(work_orders).where(
                work_orders.c.device_id == device_id,
                work_orders.c.problem_kind == problem_kind,
                work_orders.c.state.in_([s.value for s in LIVE]),
            )
        ).first()
        return WorkOrder.from_row(row) if row else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, State | Origin):
        return value.value
    return value
