"""Appointments: a time the customer agreed, in the technician's working day.

A slot is free when it lies inside the technician's working hours (their time zone),
outside the customer's quiet hours (the customer's time zone), at least `lead` from
now, on a day the technician is not yet booked to capacity, and clear of the
technician's other visits. `offer` proposes a few free slots (one per day first, so
the customer has a real choice) and tells the customer; `confirm` books the one they
took, or any other free time they picked; `book_filter_packages` books filter
replacements for filter-package customers by itself. Booking takes the technician's
row lock first, so two customers never get one technician at one time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.tables import appointment_offers, customers, packages, technicians, work_orders
from service.errors import ConcurrentChange, SlotUnavailable
from service.lifecycle import State
from service.localtime import QuietHours, working_windows
from service.messages import Kind
from service.orders import WorkOrder, WorkOrders
from service.packages import Preferred

BOOKABLE = (State.ACCEPTED, State.SCHEDULED)  # the technician took it: now find a time
BOOKED = (State.SCHEDULED.value, State.IN_PROGRESS.value)


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # UTC
    end: datetime
    before_due: bool  # within the order's SLA

    def label(self, timezone: str) -> str:
        local = self.start.astimezone(ZoneInfo(timezone))
        return f"{local:%a %Y-%m-%d %H:%M} {timezone}"


@dataclass(frozen=True, slots=True)
class _Context:
    order: WorkOrder
    technician_id: str
    tech_tz: str
    hours: dict[str, Any]
    capacity: int
    quiet: QuietHours
    booked: list[tuple[datetime, datetime]]  # the technician's other visits


class Appointments:
    def __init__(
        self,
        orders: WorkOrders,
        *,
        duration: timedelta = timedelta(hours=2),
        lead: timedelta = timedelta(hours=2),
        horizon_days: int = 7,
    ) -> None:
        self.orders, self.duration, self.lead = orders, duration, lead
        self.horizon_days = horizon_days

    # -- finding -----------------------------------------------------------------------
    def free_slots(self, order_id: int, *, now: datetime | None = None) -> list[Slot]:
        now = now or datetime.now(UTC)
        with self.orders.db.engine.connect() as conn:
            ctx = self._context(conn, order_id)
            return list(self._free(ctx, now))

    def _free(self, ctx: _Context, now: datetime) -> Iterator[Slot]:
        first = now.astimezone(ZoneInfo(ctx.tech_tz)).date()
        for _, opens, closes in working_windows(ctx.hours, ctx.tech_tz, first, self.horizon_days):
            start = opens
            while start + self.duration <= closes:
                # stepping in UTC from the day's opening: a DST day keeps its length
                end = start + self.duration
                if self._why_not(ctx, start.astimezone(UTC), end.astimezone(UTC), now) is None:
                    yield self._slot(ctx.order, start, end)
                start = end

    def _slot(self, order: WorkOrder, start: datetime, end: datetime) -> Slot:
        s, e = start.astimezone(UTC), end.astimezone(UTC)
        return Slot(s, e, before_due=order.due_at is None or e <= order.due_at)

    def _why_not(self, ctx: _Context, start: datetime, end: datetime, now: datetime) -> str | None:
        """Why the technician cannot be with the customer from `start` to `end`, if not."""
        tz = ZoneInfo(ctx.tech_tz)
        if start < now + self.lead:
            return f"it starts too soon: book at least {_hours(self.lead)} ahead"
        day = start.astimezone(tz).date()
        window = next(working_windows(ctx.hours, ctx.tech_tz, day, 1), None)
        if window is None or not (window[1] <= start and end <= window[2]):
            return f"it is outside {ctx.technician_id}'s working hours ({_hours_text(ctx.hours)})"
        if ctx.quiet.overlaps(start, end):
            return (
                f"it falls in the customer's quiet hours ({ctx.quiet.start:%H:%M}–"
                f"{ctx.quiet.end:%H:%M} {ctx.quiet.timezone})"
            )
        same_day = [b for b in ctx.booked if b[0].astimezone(tz).date() == day]
        if len(same_day) >= ctx.capacity:
            return f"{ctx.technician_id} is booked to capacity ({ctx.capacity}) on {day}"
        if any(b_start < end and start < b_end for b_start, b_end in ctx.booked):
            return f"{ctx.technician_id} has another visit then"
        return None

    def _context(self, conn: Connection, order_id: int) -> _Context:
        order = self.orders.get_in(conn, order_id)
        if order.state not in BOOKABLE or order.technician_id is None:
            raise SlotUnavailable(
                order_id,
                f"it is {order.state.value}; a visit is booked once a technician "
                "accepted the order",
            )
        tech = conn.execute(
            sa.select(technicians).where(technicians.c.id == order.technician_id)
        ).one()
        cust = (
            conn.execute(sa.select(customers).where(customers.c.id == order.customer_id)).first()
            if order.customer_id
            else None
        )
        quiet = (
            QuietHours.of(cust.timezone, cust.quiet_start, cust.quiet_end)
            if cust
            else QuietHours.of(tech.timezone, None, None)
        )
        booked = conn.execute(
            sa.select(work_orders.c.scheduled_start, work_orders.c.scheduled_end).where(
                work_orders.c.technician_id == order.technician_id,
                work_orders.c.state.in_(BOOKED),
                work_orders.c.id != order_id,
                work_orders.c.scheduled_start.is_not(None),
            )
        ).all()
        return _Context(
            order=order,
            technician_id=tech.id,
            tech_tz=tech.timezone,
            hours=tech.working_hours,
            capacity=tech.daily_capacity,
            quiet=quiet,
            booked=[(b.scheduled_start, b.scheduled_end) for b in booked],
        )

    # -- offering ----------------------------------------------------------------------
    def offer(self, order_id: int, *, count: int = 3, now: datetime | None = None) -> list[Slot]:
        """Offer `count` free slots (within the SLA first, one per day first) and tell the
        customer. A new offer replaces the previous one."""
        now = now or datetime.now(UTC)
        with self.orders.db.engine.begin() as conn:
            ctx = self._context(conn, order_id)
            chosen = pick(list(self._free(ctx, now)), count)
            if not chosen:
                raise SlotUnavailable(
                    order_id, f"{ctx.technician_id} has no free slot in {self.horizon_days} days"
                )
            offers = appointment_offers
            conn.execute(
                offers.update()
                .where(offers.c.order_id == order_id, offers.c.status == "offered")
                .values(status="superseded")
            )
            batch = conn.execute(
                offers.insert().returning(offers.c.id),
                [
                    {
                        "order_id": order_id,
                        "technician_id": ctx.technician_id,
                        "slot_start": s.start,
                        "slot_end": s.end,
                        "offered_at": now,
                        "status": "offered",
                    }
                    for s in chosen
                ],
            ).scalars()
            first_id = min(batch)
            self.orders.tell_in(
                conn,
                ctx.order,
                Kind.SLOT_PROPOSED,
                now,
                key=str(first_id),
                slots=[s.start.isoformat() for s in chosen],
            )
            return chosen

    def offered(self, order_id: int) -> list[Slot]:
        o = appointment_offers
        with self.orders.db.engine.connect() as conn:
            order = self.orders.get_in(conn, order_id)
            rows = conn.execute(
                sa.select(o.c.slot_start, o.c.slot_end)
                .where(o.c.order_id == order_id, o.c.status == "offered")
                .order_by(o.c.slot_start)
            )
            return [self._slot(order, r.slot_start, r.slot_end) for r in rows]

    # -- booking -----------------------------------------------------------------------
    def confirm(
        self,
        order_id: int,
        start: datetime,
        *,
        actor: str,
        now: datetime | None = None,
    ) -> WorkOrder:
        """Book the visit at `start` (an offered slot, or any other time the customer
        picked); refused with `SlotUnavailable`, naming why, when that time is not free.
        A scheduled order is rescheduled."""
        if start.tzinfo is None:
            raise SlotUnavailable(order_id, "the time has no time zone: give it with an offset")
        now = now or datetime.now(UTC)
        start = start.astimezone(UTC)
        with self.orders.db.engine.begin() as conn:
            technician = self.orders.get_in(conn, order_id).technician_id
            if technician is not None:
                # the technician's row lock: one booking at a time per technician
                conn.execute(
                    technicians.update()
                    .where(technicians.c.id == technician)
                    .values(active=technicians.c.active)
                )
            ctx = self._context(conn, order_id)
            if ctx.technician_id != technician:
                raise ConcurrentChange(order_id, expected=technician, found=ctx.technician_id)
            end = start + self.duration
            why = self._why_not(ctx, start, end, now)
            if why is not None:
                raise SlotUnavailable(order_id, why)
            o = appointment_offers
            conn.execute(
                o.update()
                .where(o.c.order_id == order_id, o.c.status == "offered")
                .values(status=sa.case((o.c.slot_start == start, "taken"), else_="superseded"))
            )
            return self.orders.transition_in(
                conn,
                order_id,
                State.SCHEDULED,
                actor=actor,
                reason=f"visit {start:%Y-%m-%d %H:%M} UTC",
                expect=ctx.order.state,
                now=now,
                scheduled_start=start,
                scheduled_end=end,
            )

    def book_filter_packages(self, *, now: datetime | None = None) -> dict[int, Slot]:
        """Filter-package customers do not pick: their accepted replacements are booked
        in the first free slot in the package's preferred days and hours (within the SLA
        if one is, else the first); with none free then, the first within the SLA, else
        the first. The customer chose those times, so they come before the SLA; the
        customer is told and can move it."""
        now = now or datetime.now(UTC)
        with self.orders.db.engine.connect() as conn:
            candidates = conn.execute(
                sa.select(
                    work_orders.c.id,
                    customers.c.timezone,
                    packages.c.preferred_days,
                    packages.c.preferred_from,
                    packages.c.preferred_to,
                )
                .join(packages, packages.c.id == work_orders.c.package_id)
                .join(customers, customers.c.id == work_orders.c.customer_id)
                .where(
                    work_orders.c.state == State.ACCEPTED.value,
                    work_orders.c.fulfilment == "visit",
                )
                .order_by(work_orders.c.due_at, work_orders.c.id)
            ).all()
        booked: dict[int, Slot] = {}
        for c in candidates:
            slots = self.free_slots(c.id, now=now)
            if not slots:
                continue
            days = tuple(d for d in (c.preferred_days or "").split(",") if d)
            liked = Preferred(days, c.preferred_from, c.preferred_to)
            zone = ZoneInfo(c.timezone)

            slot = min(
                slots,
                key=lambda s: (not liked.fits(s.start.astimezone(zone)), not s.before_due, s.start),
            )
            try:
                self.confirm(c.id, slot.start, actor="system:filter-package", now=now)
            except (SlotUnavailable, ConcurrentChange):
                continue  # taken meanwhile: the next run tries again
            booked[c.id] = slot
        return booked

    def on_the_way(
        self, order_id: int, technician_id: str, eta: datetime, *, now: datetime | None = None
    ) -> None:
        """The technician set off: the customer is told (even in quiet hours: they booked
        this visit), and the audit trail records it."""
        now = now or datetime.now(UTC)
        with self.orders.db.engine.begin() as conn:
            order = self.orders.get_in(conn, order_id)
            if order.state is not State.SCHEDULED or order.technician_id != technician_id:
                raise SlotUnavailable(
                    order_id,
                    f"it is {order.state.value} with {order.technician_id or 'nobody'}: only "
                    "the booked technician of a scheduled visit sets off",
                )
            self.orders.audit_in(
                conn, order, now, technician_id, "on_the_way", f"arriving {eta:%H:%M} UTC"
            )
            self.orders.tell_in(
                conn,
                order,
                Kind.TECHNICIAN_ON_THE_WAY,
                now,
                key=str(order.scheduled_start),
                eta=eta.astimezone(UTC).isoformat(),
            )


def pick(free: list[Slot], count: int) -> list[Slot]:
    """Up to `count` slots: within the SLA first; the earliest of each day first, then
    the next earliest. Returned in time order."""
    ranked = sorted(free, key=lambda s: (not s.before_due, s.start))
    chosen: list[Slot] = []
    days: set[date] = set()
    for s in ranked:
        if len(chosen) < count and s.start.date() not in days:
            chosen.append(s)
            days.add(s.start.date())
    for s in ranked:
        if len(chosen) < count and s not in chosen:
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


def _hours(d: timedelta) -> str:
    h = d.total_seconds() / 3600
    return f"{h:g} h"


def _hours_text(hours: dict[str, Any]) -> str:
    return ", ".join(f"{day} {span[0]}–{span[1]}" for day, span in hours.items()) or "no days"
