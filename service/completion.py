"""Completing an order on site: parts, serial, fees, photos, notes, outcome.

One transaction, all or nothing:
* parts used come out of the technician's van, else their outlet. A part in neither is
  refused, and stock never goes negative (the database checks it too);
* the unit's serial must match the registry, or it is recorded when the registry had none;
* the bill is itemised: parts at their price, plus fees;
* the outcome and the confirmed fault become a label the models learn from;
* a fitted filter restarts that device's filter wear, and the device is told on its
  `cmd` topic (a command row, sent by the publisher: a transactional outbox). A fixed
  fault sends `repair`.
Photos are checked (JPEG, PNG or WebP by their bytes, at most 10 MB) and stored as
files; if the transaction fails, the files written for it are removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.errors import NotFound
from db.tables import (
    device_commands,
    devices,
    filter_replacements,
    outlet_stock,
    parts,
    service_labels,
    technicians,
    van_stock,
    work_order_fees,
    work_order_parts,
)
from service import photos, warranty
from service.catalog import in_force, parts_for
from service.errors import (
    CompletionRefused,
    NotTheAssignee,
    PartNotInStock,
    SerialMismatch,
)
from service.lifecycle import State
from service.messages import Kind
from service.orders import WorkOrder, WorkOrders
from service.outlet_statements import fee_for
from service.photos import Photo
from service.settlement import CommissionTable
from service.warranty import Payer
from telemetry.profile import ProfileSet


class Outcome(StrEnum):
    FIXED = "fixed"
    NO_FAULT_FOUND = "no_fault_found"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class PartUsed:
    sku: str
    qty: int = 1


@dataclass(frozen=True)
class Fee:
    item: str
    cents: int


@dataclass(frozen=True, kw_only=True)
class CompletionReport:
    technician_id: str
    outcome: Outcome
    serial: str  # read off the unit on site
    parts: Sequence[PartUsed] = ()
    fees: Sequence[Fee] = ()
    photos: Sequence[Photo] = ()
    notes: str = ""
    confirmed_fault: str | None = None  # what it really was (the label)
    filter_stages: Sequence[str] = ()  # stages fitted; inferred from a filter order
    # the old filter's state as found, per stage: the share used up (0 new, 1 spent, more
    # past it), by gauge, weight or the maker's visual scale. A label the models learn from
    filter_found: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BillLine:
    item: str
    cents: int
    payer: Payer  # customer, maker (under warranty) or package


@dataclass(frozen=True, slots=True)
class Bill:
    lines: list[BillLine]  # parts first
    total_cents: int
    customer_cents: int  # what the customer is charged: their lines only
    cover: str  # the warranty or package that pays the rest, or why nothing does


def visit_report(
    order: WorkOrder,
    technician_id: str,
    serial: str,
    found: str | None,
    *,
    profiles: ProfileSet,
    fees: Sequence[Fee] = (),
    notes: str = "",
) -> CompletionReport:
    """What a technician reports after a visit that found `found` (a fault kind; None:
    nothing wrong): the parts the problem needs, a filter job's filter fitted, the fault
    fixed. A fault job that found nothing is `no_fault_found`."""
    filters = order.problem_kind.startswith("filter_replacement")
    fault = None if filters else found
    return CompletionReport(
        technician_id=technician_id,
        outcome=Outcome.FIXED if filters or fault else Outcome.NO_FAULT_FOUND,
        serial=serial,
        parts=[PartUsed(sku) for sku in parts_for(profiles, order.device_type, order.problem_kind)],
        fees=fees,
        notes=notes,
        confirmed_fault=fault,
    )


def stages_for(
    profiles: ProfileSet, device_type: str, problem_kind: str, given: Sequence[str]
) -> list[str]:
    """The consumable stages a job fits: those the technician lists, else the stage whose
    replacement the job's problem is (the family's profile says which)."""
    if given:
        return list(given)
    profile = profiles.get(device_type)
    for c in profile.doc.consumables if profile is not None else ():
        if c.problem == problem_kind:
            return [c.stage]
    if problem_kind == "filter_replacement":
        return ["main"]
    if problem_kind.startswith("filter_replacement_"):
        return [problem_kind.removeprefix("filter_replacement_")]
    return []


class Completion:
    def __init__(
        self,
        orders: WorkOrders,
        photo_dir: Path,
        commissions: CommissionTable | None = None,
        *,
        rating_delay: timedelta = timedelta(hours=1),
    ) -> None:
        self.orders, self.photo_dir, self.rating_delay = orders, photo_dir, rating_delay
        self.commissions = commissions or CommissionTable()

    def complete(
        self, order_id: int, report: CompletionReport, *, now: datetime | None = None
    ) -> tuple[WorkOrder, Bill]:
        now = now or datetime.now(UTC)
        for fee in report.fees:
            if not fee.item.strip() or fee.cents < 0:
                raise CompletionRefused(f"fee {fee.item!r}: needs a name and cents >= 0")
        for p in report.parts:
            if p.qty < 1:
                raise CompletionRefused(f"part {p.sku}: quantity must be at least 1")
        for stage, found in report.filter_found.items():
            if not 0.0 <= found <= 1.5:
                raise CompletionRefused(
                    f"filter {stage!r} found {found}: give the share used up, 0 (new) to 1 "
                    "(spent), at most 1.5"
                )
        checked = [photos.check(p) for p in report.photos]
        profiles = in_force(self.orders.db)  # read before the write lock
        written: list[Path] = []
        try:
            with self.orders.db.engine.begin() as conn:
                order = self.orders.get_in(conn, order_id)
                if order.technician_id != report.technician_id:
                    raise NotTheAssignee(order_id, report.technician_id, order.technician_id)
                self._serial(conn, order, report.serial)
                covered = warranty.cover(conn, order_id, now)
                lines = self._take_parts(conn, order, report, warranty.part_payer(covered))
                labour = warranty.labour_payer(covered)
                lines += [BillLine(f.item, f.cents, labour) for f in report.fees]
                if report.fees:
                    conn.execute(
                        work_order_fees.insert(),
                        [
                            {"order_id": order_id, "item": f.item, "cents": f.cents,
                             "payer": labour.value}
                            for f in report.fees
                        ],
                    )  # fmt: skip
                for c in checked:
                    written.append(
                        photos.store(
                            conn, self.photo_dir, order_id, c, stage="completion",
                            by=report.technician_id, now=now,
                        )
                    )  # fmt: skip
                self._label(conn, order, report, now)
                self._tell_device(conn, order, report, now, profiles)
                total = sum(line.cents for line in lines)
                theirs = sum(x.cents for x in lines if x.payer is warranty.Payer.CUSTOMER)
                done = self.orders.transition_in(
                    conn,
                    order_id,
                    State.COMPLETED,
                    actor=report.technician_id,
                    reason=report.outcome.value,
                    expect=State.IN_PROGRESS,
                    now=now,
                    outcome=report.outcome.value,
                    confirmed_serial=report.serial,
                    total_cents=total,
                    customer_cents=theirs,
                    notes=report.notes,
                    # fixed now: a later change to the table does not rewrite past jobs
                    commission_cents=self.commissions.for_problem(order.problem_kind),
                    outlet_fee_cents=fee_for(conn, order.outlet_id, order.problem_kind),
                )
                bill = [[x.item, x.cents, x.payer.value] for x in lines]
                self.orders.tell_in(
                    conn, done, Kind.COMPLETED, now, lines=bill, total_cents=total,
                    customer_cents=theirs,
                )  # fmt: skip
                # asked once the technician has left, not while they pack up
                self.orders.tell_in(
                    conn, done, Kind.RATING_REQUEST, now, not_before=now + self.rating_delay
                )
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return done, Bill(lines, total, theirs, covered.why)

    @staticmethod
    def _serial(conn: Connection, order: WorkOrder, read: str) -> None:
        read = read.strip()
        if not read:
            raise CompletionRefused("the unit's serial is required (scan or type it)")
        registered = conn.execute(
            sa.select(devices.c.serial).where(devices.c.id == order.device_id)
        ).scalar_one_or_none()
        if registered and registered != read:
            raise SerialMismatch(order.device_id, registered, read)
        if not registered:
            conn.execute(
                devices.update().where(devices.c.id == order.device_id).values(serial=read)
            )

    @staticmethod
    def _take_parts(
        conn: Connection, order: WorkOrder, report: CompletionReport, payer: Payer
    ) -> list[BillLine]:
        outlet = conn.execute(
            sa.select(technicians.c.outlet_id).where(technicians.c.id == report.technician_id)
        ).scalar_one()
        lines = []
        for p in report.parts:
            price = conn.execute(
                sa.select(parts.c.price_cents, parts.c.name).where(parts.c.sku == p.sku)
            ).first()
            if price is None:
                raise NotFound("part", p.sku)
            # van first, then the outlet; the WHERE keeps stock from going below zero
            source = "van"
            taken = conn.execute(
                van_stock.update()
                .where(
                    van_stock.c.technician_id == report.technician_id,
                    van_stock.c.sku == p.sku,
                    van_stock.c.qty >= p.qty,
                )
                .values(qty=van_stock.c.qty - p.qty)
            ).rowcount
            if not taken:
                source = "outlet"
                taken = conn.execute(
                    outlet_stock.update()
                    .where(
                        outlet_stock.c.outlet_id == outlet,
                        outlet_stock.c.sku == p.sku,
                        outlet_stock.c.qty >= p.qty,
                    )
                    .values(qty=outlet_stock.c.qty - p.qty)
                ).rowcount
            if not taken:
                raise PartNotInStock(p.sku, p.qty, report.technician_id, outlet)
            conn.execute(
                work_order_parts.insert().values(
                    order_id=order.id,
                    sku=p.sku,
                    qty=p.qty,
                    source=source,
                    unit_price_cents=price.price_cents,
                    payer=payer.value,
                )
            )
            item = f"{p.qty} × {price.name} ({p.sku})"
            lines.append(BillLine(item, p.qty * price.price_cents, payer))
        return lines

    @staticmethod
    def _label(conn: Connection, order: WorkOrder, report: CompletionReport, now: datetime) -> None:
        conn.execute(
            service_labels.insert().values(
                order_id=order.id,
                device_id=order.device_id,
                device_type=order.device_type,
                problem_kind=order.problem_kind,
                outcome=report.outcome.value,
                confirmed_fault=report.confirmed_fault,
                at=now,
            )
        )

    @staticmethod
    def _tell_device(
        conn: Connection,
        order: WorkOrder,
        report: CompletionReport,
        now: datetime,
        profiles: ProfileSet,
    ) -> None:
        commands = []
        fitted = stages_for(profiles, order.device_type, order.problem_kind, report.filter_stages)
        unknown = sorted(set(report.filter_found) - set(fitted))
        if unknown:
            raise CompletionRefused(
                f"filter found for {', '.join(unknown)}, but the stages fitted are "
                f"{', '.join(fitted) or 'none'}: list them in filter_stages"
            )
        for stage in fitted:
            conn.execute(
                filter_replacements.insert().values(
                    device_id=order.device_id,
                    stage=stage,
                    at=now,
                    order_id=order.id,
                    consumed_found=report.filter_found.get(stage),
                )
            )
            commands.append(("filter_replaced", {"stage": stage}))
        fault = report.confirmed_fault
        if report.outcome is Outcome.FIXED and fault:
            commands.append(("repair", {"fault": fault}))
        for cmd, args in commands:
            conn.execute(
                device_commands.insert().values(
                    device_id=order.device_id,
                    device_type=order.device_type,
                    cmd=cmd,
                    args=args,
                    correlation=f"wo-{order.id}",
                    created_at=now,
                )
            )
