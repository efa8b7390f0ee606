"""Warranty (保修) and who pays each line of a bill.

Terms are per product model, or per device type for models without terms of their own:
months of parts cover, months of labour cover (usually shorter), how many visits the
maker pays labour for in that time (None: every one), and whether the period runs from
the purchase date or the installation date on record for the device.

On a bill:
* a consumable (a filter job's filter, and its fitting) is never under warranty: the
  customer's filter package pays it if they have one, else the customer;
* any other part: the maker while the parts cover runs, else the customer;
* labour and call-out fees: the maker while the labour cover runs and free visits are
  left, else the customer.

The customer is charged only their share; the maker's share is the outlet's warranty
claim (`claims`).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.tables import (
    device_sites,
    devices,
    warranty_terms,
    work_order_fees,
    work_order_parts,
    work_orders,
)


class Payer(StrEnum):
    CUSTOMER = "customer"
    MAKER = "maker"  # under warranty: claimed from the maker
    PACKAGE = "package"  # the customer's filter package


@dataclass(frozen=True, slots=True)
class Terms:
    parts_months: int
    labour_months: int
    free_visits: int | None
    starts: str  # purchase | installation


@dataclass(frozen=True, slots=True)
class Cover:
    """What the maker pays on one job, and why (said to the customer and ops)."""

    parts: bool
    labour: bool
    package: bool  # a filter package covers the consumables
    why: str


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def terms_for(conn: Connection, model: str | None, device_type: str) -> Terms | None:
    keys = ([f"model:{model}"] if model else []) + [f"type:{device_type}"]
    rows = {
        r.applies_to: r
        for r in conn.execute(
            sa.select(warranty_terms).where(warranty_terms.c.applies_to.in_(keys))
        )
    }
    for key in keys:  # the model's own terms first
        if key in rows:
            r = rows[key]
            return Terms(r.parts_months, r.labour_months, r.free_visits, r.starts)
    return None


def cover(conn: Connection, order_id: int, on: datetime) -> Cover:
    """The cover for a job completed at `on` (on the device's dates and terms then)."""
    row = conn.execute(
        sa.select(
            work_orders.c.device_id,
            work_orders.c.problem_kind,
            devices.c.model,
            devices.c.device_type,
            device_sites.c.purchased_on,
            device_sites.c.installed_on,
            work_orders.c.package_id,
        )
        .select_from(
            work_orders.join(devices, devices.c.id == work_orders.c.device_id).outerjoin(
                device_sites, device_sites.c.device_id == work_orders.c.device_id
            )
        )
        .where(work_orders.c.id == order_id)
    ).one()
    if row.problem_kind.startswith("filter_replacement"):  # a consumable: never warranty
        if row.package_id is not None:
            return Cover(False, False, True, "the filter package covers the filter and fitting")
        return Cover(False, False, False, "a filter is a consumable: not under warranty")
    terms = terms_for(conn, row.model, row.device_type)
    if terms is None:
        return Cover(False, False, False, f"no warranty terms for {row.model or row.device_type}")
    start = row.purchased_on if terms.starts == "purchase" else row.installed_on
    start = start or row.installed_on or row.purchased_on  # the other date, if that is all
    if start is None:
        return Cover(False, False, False, "no purchase or installation date on record")
    day = on.astimezone(UTC).date()
    parts_end = add_months(start, terms.parts_months)
    labour_end = add_months(start, terms.labour_months)
    parts, labour = day < parts_end, day < labour_end
    if labour and terms.free_visits is not None:
        used = _maker_paid_visits(conn, row.device_id, order_id)
        labour = used < terms.free_visits
        if not labour:
            return Cover(
                parts, False, False,
                f"parts under warranty to {parts_end}" if parts else f"warranty ended {parts_end}",
            )  # fmt: skip
    if parts and labour:
        return Cover(
            True, True, False, f"under warranty: parts to {parts_end}, labour to {labour_end}"
        )
    if parts:
        return Cover(
            True, False, False, f"parts under warranty to {parts_end}; labour ended {labour_end}"
        )
    return Cover(False, False, False, f"warranty ended {parts_end}")


def _maker_paid_visits(conn: Connection, device_id: str, not_this: int) -> int:
    """Earlier jobs on the device whose labour the maker paid."""
    return int(
        conn.execute(
            sa.select(sa.func.count(sa.distinct(work_order_fees.c.order_id)))
            .select_from(
                work_order_fees.join(work_orders, work_orders.c.id == work_order_fees.c.order_id)
            )
            .where(
                work_orders.c.device_id == device_id,
                work_orders.c.id != not_this,
                work_order_fees.c.payer == Payer.MAKER.value,
            )
        ).scalar_one()
    )


def part_payer(c: Cover) -> Payer:
    return Payer.PACKAGE if c.package else Payer.MAKER if c.parts else Payer.CUSTOMER


def labour_payer(c: Cover) -> Payer:
    return Payer.PACKAGE if c.package else Payer.MAKER if c.labour else Payer.CUSTOMER


# -- claims to the maker -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClaimLine:
    order_id: int
    outlet_id: str
    device_id: str
    problem_kind: str
    completed_at: datetime
    item: str
    cents: int


@dataclass(frozen=True, slots=True)
class ClaimRow:
    outlet_id: str
    jobs: int
    parts_cents: int
    labour_cents: int
    total_cents: int


def claim_lines(db: Database, start: datetime, end: datetime) -> list[ClaimLine]:
    """Every bill line the maker pays, of jobs completed in [start, end)."""
    wo = work_orders
    out: list[ClaimLine] = []
    with db.engine.connect() as conn:
        base = (wo.c.completed_at >= start, wo.c.completed_at < end)
        part_rows = conn.execute(
            sa.select(
                wo.c.id, wo.c.outlet_id, wo.c.device_id, wo.c.problem_kind, wo.c.completed_at,
                work_order_parts.c.sku, work_order_parts.c.qty, work_order_parts.c.unit_price_cents,
            )
            .select_from(work_order_parts.join(wo, wo.c.id == work_order_parts.c.order_id))
            .where(*base, work_order_parts.c.payer == Payer.MAKER.value)
        )  # fmt: skip
        for r in part_rows:
            out.append(
                ClaimLine(r.id, r.outlet_id or "-", r.device_id, r.problem_kind, r.completed_at,
                          f"{r.qty} × {r.sku}", r.qty * r.unit_price_cents)
            )  # fmt: skip
        fee_rows = conn.execute(
            sa.select(
                wo.c.id, wo.c.outlet_id, wo.c.device_id, wo.c.problem_kind, wo.c.completed_at,
                work_order_fees.c.item, work_order_fees.c.cents,
            )
            .select_from(work_order_fees.join(wo, wo.c.id == work_order_fees.c.order_id))
            .where(*base, work_order_fees.c.payer == Payer.MAKER.value)
        )  # fmt: skip
        for f in fee_rows:
            out.append(
                ClaimLine(f.id, f.outlet_id or "-", f.device_id, f.problem_kind, f.completed_at,
                          f"labour: {f.item}", f.cents)
            )  # fmt: skip
    return sorted(out, key=lambda x: (x.outlet_id, x.order_id, x.item))


def claims(lines: Sequence[ClaimLine]) -> list[ClaimRow]:
    """Per outlet: the jobs, parts and labour the maker owes it."""
    acc: dict[str, tuple[set[int], int, int]] = {}
    for x in lines:
        jobs, parts, labour = acc.get(x.outlet_id, (set(), 0, 0))
        jobs.add(x.order_id)
        if x.item.startswith("labour: "):
            labour += x.cents
        else:
            parts += x.cents
        acc[x.outlet_id] = (jobs, parts, labour)
    return [
        ClaimRow(outlet, len(jobs), parts, labour, parts + labour)
        for outlet, (jobs, parts, labour) in sorted(acc.items())
    ]
