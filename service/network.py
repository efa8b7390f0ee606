"""The outlet network (网点): the maker, its regions, their outlets, the outlets'
technicians; and the answers outlets give to the jobs offered to them.

An outlet with hours to accept (`accept_hours`) sees each job of its territories first
(`service.offers`). Within those hours it **accepts** (then dispatch sends one of its
technicians) or **declines** with a reason. A declined job, or one not answered in time
(`expire`: the late answer counts against the outlet in its statement), goes to another
outlet of the same region by itself: the one with the fewest live jobs among those with
a technician for the device type that were not offered the job before. Where there is
none, the job waits for the region's ops to name an outlet (`reroute`), with the reason
on the job.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import (
    outlet_offers,
    outlets,
    regions,
    technician_skills,
    technicians,
    work_orders,
)
from service.errors import ServiceError
from service.lifecycle import LIVE, State
from service.offers import ACCEPTED, DECLINED, EXPIRED, OFFERED, offer_in
from service.orders import WorkOrder, WorkOrders


class NotOffered(ServiceError):
    """The job is not waiting for that outlet's answer."""


class CannotReroute(ServiceError):
    """The job cannot go to that outlet as it stands."""


@dataclass(frozen=True, slots=True)
class Offer:
    id: int
    order_id: int
    outlet_id: str
    offered_at: datetime
    due_at: datetime
    state: str  # offered | accepted | declined | expired
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None


@dataclass
class OutletNode:
    id: str
    name: str
    timezone: str
    accept_hours: int | None
    technicians: list[str] = field(default_factory=list)


@dataclass
class RegionNode:
    id: str | None  # None: outlets in no region (answer to the maker directly)
    name: str
    outlets: list[OutletNode] = field(default_factory=list)


class Network:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.orders = WorkOrders(db)

    # -- the hierarchy ---------------------------------------------------------------
    def tree(self, outlet_ids: Collection[str] | None = None) -> list[RegionNode]:
        """Regions → outlets → technicians (active ones), all or those of `outlet_ids`."""
        with self.db.engine.connect() as conn:
            names = dict(conn.execute(sa.select(regions.c.id, regions.c.name)).all())
            q = sa.select(outlets).order_by(outlets.c.id)
            if outlet_ids is not None:
                q = q.where(outlets.c.id.in_(sorted(outlet_ids)))
            rows = conn.execute(q).all()
            staff = conn.execute(
                sa.select(technicians.c.id, technicians.c.outlet_id)
                .where(technicians.c.active.is_(True))
                .order_by(technicians.c.id)
            ).all()
        by_outlet: dict[str, list[str]] = {}
        for tech, outlet in staff:
            by_outlet.setdefault(outlet, []).append(tech)
        tree: dict[str | None, RegionNode] = {}
        for o in rows:
            node = tree.setdefault(
                o.region_id,
                RegionNode(o.region_id, names.get(o.region_id, "no region")),
            )
            node.outlets.append(
                OutletNode(o.id, o.name, o.timezone, o.accept_hours, by_outlet.get(o.id, []))
            )
        return sorted(tree.values(), key=lambda r: (r.id is None, r.id or ""))

    # -- offers ----------------------------------------------------------------------
    def offers(
        self,
        *,
        outlets_: Collection[str] | None = None,
        state: str | None = None,
        order_id: int | None = None,
        limit: int = 200,
    ) -> list[Offer]:
        """Offers, those due soonest first."""
        q = sa.select(outlet_offers).order_by(outlet_offers.c.due_at, outlet_offers.c.id)
        if outlets_ is not None:
            q = q.where(outlet_offers.c.outlet_id.in_(sorted(outlets_)))
        if state is not None:
            q = q.where(outlet_offers.c.state == state)
        if order_id is not None:
            q = q.where(outlet_offers.c.order_id == order_id)
        with self.db.engine.connect() as conn:
            return [Offer(**r._mapping) for r in conn.execute(q.limit(limit))]

    def accept(
        self,
        order_id: int,
        *,
        by: str,
        outlets_: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> WorkOrder:
        """The outlet takes the job: dispatch may now send one of its technicians."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            offer = self._pending(conn, order_id, outlets_, now)
            self._answer(conn, offer, ACCEPTED, by, None, now)
            order = self._set(conn, order_id, outlet_state=ACCEPTED)
            self.orders.audit_in(
                conn, order, now, by, "outlet_accept", f"outlet {offer.outlet_id} accepted it"
            )
        return order

    def decline(
        self,
        order_id: int,
        *,
        by: str,
        reason: str,
        outlets_: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> WorkOrder:
        """The outlet will not take the job (the reason is kept): it goes to another
        outlet of the region, or waits for the region's ops."""
        now = now or datetime.now(UTC)
        reason = reason.strip()
        if not reason:
            raise NotOffered(f"order {order_id}: say why the outlet declines it")
        with self.db.engine.begin() as conn:
            offer = self._pending(conn, order_id, outlets_, now)
            self._answer(conn, offer, DECLINED, by, reason, now)
            return self._onwards(
                conn, order_id, offer.outlet_id, f"outlet {offer.outlet_id} declined it: {reason}",
                by, now,
            )  # fmt: skip

    def expire(self, *, now: datetime | None = None) -> list[int]:
        """Offers not answered in the outlet's hours: the job goes on. Returns the jobs."""
        now = now or datetime.now(UTC)
        moved = []
        with self.db.engine.connect() as conn:
            late = (
                conn.execute(
                    sa.select(outlet_offers.c.id).where(
                        outlet_offers.c.state == OFFERED, outlet_offers.c.due_at <= now
                    )
                )
                .scalars()
                .all()
            )
        for offer_id in late:
            with self.db.engine.begin() as conn:
                row = conn.execute(
                    sa.select(outlet_offers).where(outlet_offers.c.id == offer_id)
                ).one()
                offer = Offer(**row._mapping)
                if offer.state != OFFERED:
                    continue  # answered meanwhile
                self._answer(conn, offer, EXPIRED, "system:outlet-sla", "not answered", now)
                why = (
                    f"outlet {offer.outlet_id} did not answer by {offer.due_at:%Y-%m-%d %H:%M} UTC"
                )
                self._onwards(conn, offer.order_id, offer.outlet_id, why, "system:outlet-sla", now)
                moved.append(offer.order_id)
        return moved

    def reroute(
        self,
        order_id: int,
        outlet_id: str,
        *,
        by: str,
        reason: str = "",
        now: datetime | None = None,
    ) -> WorkOrder:
        """Ops name the outlet for a job nobody has taken yet (it is open, or waiting
        for an outlet): that outlet is offered it, or takes it at once."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            order = self.orders.get_in(conn, order_id)
            if order.state is not State.OPEN:
                raise CannotReroute(
                    f"order {order_id} is {order.state.value}: only an open job goes to "
                    "another outlet (unassign it first)"
                )
            known = conn.execute(
                sa.select(outlets.c.id).where(outlets.c.id == outlet_id)
            ).scalar_one_or_none()
            if known is None:
                raise NotFound("outlet", outlet_id)
            conn.execute(
                outlet_offers.update()
                .where(outlet_offers.c.order_id == order_id, outlet_offers.c.state == OFFERED)
                .values(state=DECLINED, decided_at=now, decided_by=by, reason="rerouted by ops")
            )
            why = f"sent to outlet {outlet_id} by {by}" + (f": {reason}" if reason else "")
            return self._to(conn, order, outlet_id, why, by, now)

    # -- inside ----------------------------------------------------------------------
    @staticmethod
    def _pending(
        conn: Connection, order_id: int, outlets_: Collection[str] | None, now: datetime
    ) -> Offer:
        row = conn.execute(
            sa.select(outlet_offers)
            .where(outlet_offers.c.order_id == order_id, outlet_offers.c.state == OFFERED)
            .with_for_update()
        ).first()
        if row is None or (outlets_ is not None and row.outlet_id not in outlets_):
            raise NotOffered(f"order {order_id} is not waiting for your outlet's answer")
        return Offer(**row._mapping)

    @staticmethod
    def _answer(
        conn: Connection, offer: Offer, state: str, by: str, reason: str | None, now: datetime
    ) -> None:
        done = conn.execute(
            outlet_offers.update()
            .where(outlet_offers.c.id == offer.id, outlet_offers.c.state == OFFERED)
            .values(state=state, decided_at=now, decided_by=by, reason=reason)
        ).rowcount
        if not done:
            raise NotOffered(f"order {offer.order_id} was answered meanwhile: read it again")

    def _set(self, conn: Connection, order_id: int, **values: object) -> WorkOrder:
        conn.execute(
            work_orders.update()
            .where(work_orders.c.id == order_id)
            .values(version=work_orders.c.version + 1, **values)
        )
        return self.orders.get_in(conn, order_id)

    def _onwards(
        self, conn: Connection, order_id: int, left: str, why: str, by: str, now: datetime
    ) -> WorkOrder:
        """After `left` declined or let it lapse: the next outlet of its region, else
        the region's ops."""
        order = self.orders.get_in(conn, order_id)
        nxt = self._next_outlet(conn, order, left)
        if nxt is None:
            region = conn.execute(
                sa.select(outlets.c.region_id).where(outlets.c.id == left)
            ).scalar_one_or_none()
            stuck = (
                f"{why}; no other outlet {'of region ' + region if region else 'nearby'} can "
                f"take it: name one (POST /api/v1/orders/{order_id}/outlet)"
            )
            order = self._set(conn, order_id, outlet_state=DECLINED, unassignable_reason=stuck)
            self.orders.audit_in(conn, order, now, by, "outlet_decline", stuck)
            return order
        return self._to(conn, order, nxt, f"{why}; offered to outlet {nxt}", by, now)

    def _to(
        self, conn: Connection, order: WorkOrder, outlet_id: str, why: str, by: str, now: datetime
    ) -> WorkOrder:
        self._set(conn, order.id, outlet_id=outlet_id, outlet_state=None, unassignable_reason=None)
        if offer_in(conn, order.id, outlet_id, now) is None:  # it takes jobs at once
            self._set(conn, order.id, outlet_state=ACCEPTED)
        moved = self.orders.get_in(conn, order.id)
        self.orders.audit_in(conn, moved, now, by, "outlet_reroute", why)
        return moved

    @staticmethod
    def _next_outlet(conn: Connection, order: WorkOrder, left: str) -> str | None:
        region = conn.execute(
            sa.select(outlets.c.region_id).where(outlets.c.id == left)
        ).scalar_one_or_none()
        if region is None:
            return None
        tried = sa.select(outlet_offers.c.outlet_id).where(outlet_offers.c.order_id == order.id)
        skilled = (
            sa.select(technicians.c.outlet_id)
            .join(technician_skills, technician_skills.c.technician_id == technicians.c.id)
            .where(
                technicians.c.active.is_(True),
                technician_skills.c.device_type == order.device_type,
                technician_skills.c.problem_kind.in_(["*", order.problem_kind]),
            )
        )
        live = (
            sa.select(sa.func.count())
            .where(
                work_orders.c.outlet_id == outlets.c.id,
                work_orders.c.state.in_([s.value for s in LIVE]),
            )
            .correlate(outlets)
            .scalar_subquery()
        )
        return conn.execute(
            sa.select(outlets.c.id)
            .where(
                outlets.c.region_id == region,
                outlets.c.id != left,
                outlets.c.id.not_in(tried),
                outlets.c.id.in_(skilled),
            )
            .order_by(live, outlets.c.id)
            .limit(1)
        ).scalar_one_or_none()
