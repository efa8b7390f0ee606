"""Automatic dispatch: each open order to the technician who should take it.

The rules, in order (docs/workorders.md, "Dispatch"):
1. **territory**: the technician covers the device's territory (a job its outlet
   accepted: one of that outlet's technicians, those covering the territory first);
2. **skill**: for the device type and the problem (or any problem on that type);
3. not someone who already **declined** this order;
4. **calendar**: works at least one day of the horizon (their own time zone);
5. **capacity**: fewer live orders than daily capacity × horizon days;
6. **parts**: what the problem needs (`catalog`) is in their van or at their outlet,
   counting what their other live orders will use;
7. the customer's **butler** technician when they qualify;
8. otherwise the **least loaded** (share of capacity, then count, then id).

An order nobody can take is flagged with the reason of the first rule that left nobody.
One dispatch run at a time (a PostgreSQL advisory lock; SQLite's write lock), so two
dispatchers never assign one order twice or overfill one technician.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import (
    customers,
    outlet_stock,
    technician_skills,
    technician_territories,
    technicians,
    van_stock,
    work_order_events,
    work_orders,
)
from service.catalog import in_force, parts_for
from service.errors import ConcurrentChange, InvalidAssignment, NotTheAssignee
from service.lifecycle import State
from service.localtime import WEEKDAYS
from service.offers import ACCEPTED
from service.orders import WorkOrder, WorkOrders
from telemetry.profile import ProfileSet

BUSY = (State.ASSIGNED, State.ACCEPTED, State.SCHEDULED, State.IN_PROGRESS)
REASSIGNABLE = (State.ASSIGNED, State.ACCEPTED, State.SCHEDULED)  # back to open on the way
DISPATCH_LOCK = 0x46C_D15  # an arbitrary, fixed advisory-lock key


@dataclass
class Technician:
    id: str
    outlet_id: str
    capacity: int  # live orders they can hold over the horizon
    load: int
    works: bool  # works at least one day of the horizon
    territories: set[str] = field(default_factory=set)
    skills: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Stock:
    """Parts left to promise: vans and outlets, minus what live orders will use."""

    van: dict[tuple[str, str], int]  # (technician, sku) -> qty
    outlet: dict[tuple[str, str], int]  # (outlet, sku) -> qty

    def source(self, tech: Technician, skus: Sequence[str]) -> str | None:
        """'van' or 'outlet' when every part is there (van first), else None."""
        if all(self.van.get((tech.id, s), 0) > 0 for s in skus):
            return "van"
        if all(self.outlet.get((tech.outlet_id, s), 0) > 0 for s in skus):
            return "outlet"
        return None

    def take(self, tech: Technician, skus: Sequence[str]) -> None:
        where = self.source(tech, skus)
        for s in skus:
            if where == "van":
                self.van[(tech.id, s)] -= 1
            elif where == "outlet":
                self.outlet[(tech.outlet_id, s)] -= 1


@dataclass(frozen=True, slots=True)
class Decision:
    order_id: int
    technician_id: str | None
    why: str  # the rule that chose, or why nobody can take it


@dataclass
class DispatchReport:
    assigned: int = 0
    unassignable: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0


class Dispatcher:
    def __init__(self, db: Database, *, horizon_days: int = 2, actor: str = "dispatch") -> None:
        self.db, self.horizon_days, self.actor = db, horizon_days, actor
        self.orders = WorkOrders(db)

    # -- the run -----------------------------------------------------------------------
    def run(
        self, order_ids: Sequence[int] | None = None, *, now: datetime | None = None
    ) -> DispatchReport:
        """Assign the open, unassigned orders (all, or those given); most urgent first."""
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        report = DispatchReport()
        profiles = in_force(self.db)  # read before the write lock (SQLite has one writer)
        with self.db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": DISPATCH_LOCK})
            q = (
                sa.select(work_orders)
                .where(work_orders.c.state == State.OPEN.value)
                # a diy replacement is shipped, not visited: nobody to send
                .where(
                    sa.or_(work_orders.c.fulfilment.is_(None), work_orders.c.fulfilment != "diy")
                )
                # an outlet that accepts its jobs sees them first: not yet answered, or
                # declined and waiting for another outlet, nobody is sent
                .where(
                    sa.or_(
                        work_orders.c.outlet_state.is_(None),
                        work_orders.c.outlet_state == ACCEPTED,
                    )
                )
                .order_by(
                    work_orders.c.priority.desc(),
                    work_orders.c.due_at.is_(None),
                    work_orders.c.due_at,
                    work_orders.c.created_at,
                    work_orders.c.id,
                )
            )
            if order_ids is not None:
                q = q.where(work_orders.c.id.in_(list(order_ids)))
            todo = [WorkOrder.from_row(r) for r in conn.execute(q)]
            if not todo:
                return report
            techs, stock = self._technicians(conn, now, profiles)
            butlers = self._butlers(conn, {o.customer_id for o in todo if o.customer_id})
            decisions = [decide(o, techs, stock, butlers, profiles) for o in todo]
            landed = self._write(conn, todo, decisions, now)
        for d in decisions:
            if d.technician_id is None:
                report.unassignable[d.order_id] = d.why
            elif d.order_id in landed:
                report.assigned += 1
        report.seconds = time.perf_counter() - started
        return report

    def _technicians(
        self, conn: Connection, now: datetime, profiles: ProfileSet
    ) -> tuple[dict[str, Technician], Stock]:
        load: dict[str, int] = dict(
            conn.execute(
                sa.select(work_orders.c.technician_id, sa.func.count())
                .where(work_orders.c.state.in_([s.value for s in BUSY]))
                .group_by(work_orders.c.technician_id)
            ).all()
        )
        techs: dict[str, Technician] = {}
        for r in conn.execute(sa.select(technicians).where(technicians.c.active.is_(True))):
            techs[r.id] = Technician(
                id=r.id,
                outlet_id=r.outlet_id,
                capacity=r.daily_capacity * self.horizon_days,
                load=load.get(r.id, 0),
                works=self._works(r.working_hours, r.timezone, now),
            )
        for tid, zone in conn.execute(sa.select(technician_territories)):
            if tid in techs:
                techs[tid].territories.add(zone)
        for tid, device_type, problem in conn.execute(sa.select(technician_skills)):
            if tid in techs:
                techs[tid].skills.add((device_type, problem))
        stock = Stock(
            van={(t, s): q for t, s, q in conn.execute(sa.select(van_stock))},
            outlet={(o, s): q for o, s, q in conn.execute(sa.select(outlet_stock))},
        )
        # what live orders will use is already promised
        busy = conn.execute(
            sa.select(
                work_orders.c.technician_id, work_orders.c.device_type, work_orders.c.problem_kind
            ).where(work_orders.c.state.in_([s.value for s in BUSY]))
        )
        for tid, device_type, problem in busy:
            if tid in techs:
                stock.take(techs[tid], parts_for(profiles, device_type, problem))
        return techs, stock

    def _works(self, hours: dict[str, Any], tz: str, now: datetime) -> bool:
        today = now.astimezone(ZoneInfo(tz)).date()
        days = (today + timedelta(days=i) for i in range(self.horizon_days))
        return any(WEEKDAYS[d.weekday()] in hours for d in days)

    @staticmethod
    def _butlers(conn: Connection, customer_ids: set[str]) -> dict[str, str]:
        if not customer_ids:
            return {}
        rows = conn.execute(
            sa.select(customers.c.id, customers.c.butler_technician_id).where(
                customers.c.id.in_(customer_ids), customers.c.butler_technician_id.is_not(None)
            )
        )
        return {r.id: r.butler_technician_id for r in rows}

    def _write(
        self, conn: Connection, todo: list[WorkOrder], decisions: list[Decision], now: datetime
    ) -> set[int]:
        """Apply the decisions; returns the orders assigned (all, unless someone changed
        one meanwhile)."""
        by_id = {o.id: o for o in todo}
        assigned = [d for d in decisions if d.technician_id]
        landed: set[int] = set()
        if assigned:
            conn.execute(
                work_orders.update()
                .where(
                    work_orders.c.id == sa.bindparam("oid"),
                    work_orders.c.version == sa.bindparam("v"),
                )
                .values(
                    state=State.ASSIGNED.value,
                    technician_id=sa.bindparam("tid"),
                    version=sa.bindparam("v", type_=sa.Integer) + 1,
                    updated_at=now,
                    unassignable_reason=None,
                ),
                [
                    {"oid": d.order_id, "v": by_id[d.order_id].version, "tid": d.technician_id}
                    for d in assigned
                ],
            )
            # someone may have changed an order since we read it (a cancel, an ops
            # reassignment): those kept their change; only ours get an audit event
            landed = {
                r.id
                for r in conn.execute(
                    sa.select(work_orders.c.id, work_orders.c.version).where(
                        work_orders.c.id.in_([d.order_id for d in assigned])
                    )
                )
                if r.version == by_id[r.id].version + 1
            }
            assigned = [d for d in assigned if d.order_id in landed]
        if assigned:
            conn.execute(
                work_order_events.insert(),
                [
                    {
                        "order_id": d.order_id,
                        "at": now,
                        "actor": self.actor,
                        "action": "assign",
                        "from_state": State.OPEN.value,
                        "to_state": State.ASSIGNED.value,
                        "reason": d.why,
                        "data": {"technician_id": d.technician_id},
                    }
                    for d in assigned
                ],
            )
        flagged = [d for d in decisions if not d.technician_id]
        if flagged:
            conn.execute(
                work_orders.update()
                .where(work_orders.c.id == sa.bindparam("oid"))
                .values(unassignable_reason=sa.bindparam("why"), updated_at=now),
                [{"oid": d.order_id, "why": d.why} for d in flagged],
            )
        return landed

    # -- ops' own choice ---------------------------------------------------------------
    def assign_to(
        self,
        order_id: int,
        technician_id: str,
        *,
        actor: str,
        reason: str = "",
        now: datetime | None = None,
    ) -> WorkOrder:
        """Ops assign (or reassign) an order to a technician they chose, overriding
        dispatch. A job with someone else goes back to open first (its booked visit
        with it), both steps in the audit trail; the technician must then accept."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            tech = conn.execute(
                sa.select(technicians.c.id, technicians.c.active).where(
                    technicians.c.id == technician_id
                )
            ).first()
            if tech is None:
                raise NotFound("technician", technician_id)
            if not tech.active:
                raise InvalidAssignment(f"technician {technician_id!r} is not active")
            order = self.orders.get_in(conn, order_id)
            if order.technician_id == technician_id and order.state is not State.OPEN:
                return order
            if order.state in REASSIGNABLE:
                order = self.orders.transition_in(
                    conn,
                    order_id,
                    State.OPEN,
                    actor=actor,
                    reason=reason or f"reassigned to {technician_id}",
                    expect=order.state,
                    now=now,
                    technician_id=None,
                    scheduled_start=None,
                    scheduled_end=None,
                )
            return self.orders.transition_in(
                conn,
                order_id,
                State.ASSIGNED,
                actor=actor,
                reason=reason or "chosen by ops",
                expect=State.OPEN,
                now=now,
                technician_id=technician_id,
                unassignable_reason=None,
            )

    # -- the technician's answer -------------------------------------------------------
    def accept(
        self, order_id: int, technician_id: str, *, now: datetime | None = None
    ) -> WorkOrder:
        order = self._assigned_to(order_id, technician_id)
        first = order.first_offer_accepted
        return self.orders.transition(
            order_id,
            State.ACCEPTED,
            actor=technician_id,
            expect=State.ASSIGNED,
            now=now,
            # dispatch first-time success: the first technician offered it took it
            first_offer_accepted=(not order.declined_by) if first is None else first,
        )

    def decline(
        self, order_id: int, technician_id: str, reason: str, *, now: datetime | None = None
    ) -> DispatchReport:
        """Back to open, never offered to this technician again, then to the next one."""
        order = self._assigned_to(order_id, technician_id)
        self.orders.transition(
            order_id,
            State.OPEN,
            actor=technician_id,
            reason=reason,
            expect=State.ASSIGNED,
            now=now,
            declined_by=[*order.declined_by, technician_id],
            first_offer_accepted=False,
        )
        return self.run([order_id], now=now)

    def _assigned_to(self, order_id: int, technician_id: str) -> WorkOrder:
        order = self.orders.get(order_id)
        if order.state is not State.ASSIGNED:
            raise ConcurrentChange(order_id, expected=State.ASSIGNED, found=order.state)
        if order.technician_id != technician_id:
            raise NotTheAssignee(order_id, technician_id, order.technician_id)
        return order


def decide(
    order: WorkOrder,
    techs: dict[str, Technician],
    stock: Stock,
    butlers: dict[str, str],
    profiles: ProfileSet,
) -> Decision:
    """The technician for `order` by the module's rules, or why there is none. Updates
    the chosen technician's load and the stock it will use."""
    zone = order.territory_id
    if zone is None:
        return Decision(order.id, None, "the device has no registered site (territory)")
    if order.outlet_state == ACCEPTED:
        # the outlet took the job: its technicians, those covering the territory first
        # (a job taken over from another outlet goes to any of them)
        staff = [t for t in techs.values() if t.outlet_id == order.outlet_id]
        pool = [t for t in staff if zone in t.territories] or staff
        if not pool:
            return Decision(order.id, None, f"outlet {order.outlet_id} has no technician")
    else:
        pool = [t for t in techs.values() if zone in t.territories]
    if not pool:
        return Decision(order.id, None, f"no technician covers territory {zone}")
    need = (order.device_type, order.problem_kind)
    pool = [t for t in pool if need in t.skills or (order.device_type, "*") in t.skills]
    if not pool:
        return Decision(
            order.id,
            None,
            f"no technician in {zone} can do {order.device_type}/{order.problem_kind}",
        )
    pool = [t for t in pool if t.id not in order.declined_by]
    if not pool:
        return Decision(order.id, None, f"every skilled technician in {zone} declined it")
    pool = [t for t in pool if t.works]
    if not pool:
        return Decision(order.id, None, f"no skilled technician in {zone} works in the horizon")
    skilled = len(pool)
    pool = [t for t in pool if t.load < t.capacity]
    if not pool:
        return Decision(order.id, None, f"all {skilled} skilled technicians in {zone} are full")
    skus = parts_for(profiles, *need)
    pool = [t for t in pool if stock.source(t, skus) is not None]
    if not pool:
        return Decision(
            order.id, None, f"no {', '.join(skus)} in a van or at an outlet serving {zone}"
        )
    butler = butlers.get(order.customer_id or "")
    chosen = next((t for t in pool if t.id == butler), None)
    why = "the customer's butler technician"
    if chosen is None:
        chosen = min(pool, key=lambda t: (t.load / t.capacity, t.load, t.id))
        why = f"least loaded of {len(pool)} who qualify"
    chosen.load += 1
    stock.take(chosen, skus)
    return Decision(order.id, chosen.id, why)
