"""Filter packages (滤芯套餐) as a product: plans, sales, renewals and entitlements.

A **plan** is what the maker sells for a product model or a whole device type: which
filter replacements it covers (none named: every one), how many over how many months
(None: as many as fall due), its price, and whether it may be taken do-it-yourself (the
filter is shipped and the customer fits it) instead of a technician's visit.

A **package** is one sale of a plan for one device: the entitlement. It copies what the
plan promised at the sale, so a later change of plan does not change what was sold. A
sale is kept by the seller's own id (`sale_id`): the same sale sent again is the same
package, so the app, an agent's console or a shop's system can retry freely. A device
that still has cover when a new package is sold (a renewal, or an early sale) gets the
new one from the day the old one ends: cover never doubles, and nothing paid is lost.

The entitlement is used when a due replacement opens a job (`entitlement_in`): the job
goes straight to dispatch without review, carries the package, and its bill is the
package's. A cancelled job gives its replacement back. A visit is booked in the
customer's preferred days and hours when a free slot is there (`service.appointments`);
a do-it-yourself replacement is shipped instead (`service.diy`).

Renewal reminders (`remind_renewals`) go out once per package, a month before it ends or
when its last replacement is used, as proactive messages: within the customer's weekly
cap and quiet hours like every other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import device_sites, devices, package_plans, packages, work_orders
from service.errors import ServiceError
from service.lifecycle import State
from service.messages import Kind
from service.notifications import enqueue
from service.sla import problem_class
from service.warranty import add_months

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REMIND_BEFORE = timedelta(days=30)
# a job that never happened gives its replacement back
NOT_USED = (State.CANCELLED.value, State.REJECTED.value)


class Fulfilment(StrEnum):
    VISIT = "visit"  # a technician fits it
    DIY = "diy"  # the filter is shipped; the customer fits it


class PackageRefused(ServiceError):
    """A sale or change that cannot be made as asked; the message says why."""


class SaleConflict(ServiceError):
    """The sale id was used before for another device or plan."""


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    applies_to: str  # model:<code> | type:<family>
    covers: tuple[str, ...]  # problem kinds; empty: every filter replacement
    replacements: int | None
    months: int
    price_cents: int
    diy: bool
    active: bool

    @classmethod
    def from_row(cls, r: Any) -> Plan:
        return cls(
            r.id, r.name, r.applies_to, tuple(r.covers or ()), r.replacements, r.months,
            r.price_cents, bool(r.diy), bool(r.active),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Preferred:
    """When the customer would like a package visit: some weekdays, a local time window."""

    days: tuple[str, ...] = ()  # empty: any day
    start: str | None = None  # local HH:MM a visit may start from...
    end: str | None = None  # ...and by

    def check(self) -> None:
        bad = [d for d in self.days if d not in DAYS]
        if bad:
            raise PackageRefused(f"unknown weekday {', '.join(bad)}: one of {', '.join(DAYS)}")

    def fits(self, local: datetime) -> bool:
        """A visit starting at `local` (the customer's time) suits them. Hours that end
        before they start run over midnight; one end alone runs to or from midnight."""
        if self.days and DAYS[local.weekday()] not in self.days:
            return False
        start, end, t = self.start or "00:00", self.end or "23:59", f"{local:%H:%M}"
        return start <= t <= end if start <= end else (t >= start or t <= end)


@dataclass(frozen=True, slots=True)
class Package:
    id: int
    sale_id: str
    device_id: str
    customer_id: str
    plan_id: str
    starts_on: date
    ends_on: date  # the first day it no longer covers
    covers: tuple[str, ...]
    replacements: int | None
    used: int
    price_cents: int
    fulfilment: Fulfilment
    preferred: Preferred
    channel: str
    sold_by: str
    sold_at: datetime
    renews_id: int | None
    renewed_by_id: int | None  # the package sold to follow this one
    reminded_at: datetime | None

    @property
    def remaining(self) -> int | None:
        return None if self.replacements is None else max(0, self.replacements - self.used)

    def covers_problem(self, problem_kind: str) -> bool:
        if problem_class(problem_kind) != "filter":
            return False
        return not self.covers or problem_kind in self.covers

    def status(self, today: date) -> str:
        if today < self.starts_on:
            return "upcoming"
        if today >= self.ends_on:
            return "expired"
        return "used_up" if self.remaining == 0 else "active"


def _used() -> Any:
    return (
        sa.select(sa.func.count())
        .where(work_orders.c.package_id == packages.c.id, work_orders.c.state.not_in(NOT_USED))
        .correlate(packages)
        .scalar_subquery()
    )


def _renewed_by() -> Any:
    later = packages.alias("later")
    return (
        sa.select(sa.func.min(later.c.id))
        .where(later.c.renews_id == packages.c.id)
        .correlate(packages)
        .scalar_subquery()
    )


def _select() -> Any:
    return sa.select(
        packages, _used().label("used"), _renewed_by().label("renewed_by_id")
    ).select_from(packages)


def _package(r: Any) -> Package:
    days = tuple(d for d in (r.preferred_days or "").split(",") if d)
    return Package(
        id=r.id, sale_id=r.sale_id, device_id=r.device_id, customer_id=r.customer_id,
        plan_id=r.plan_id, starts_on=r.starts_on, ends_on=r.ends_on,
        covers=tuple(r.covers or ()), replacements=r.replacements, used=int(r.used),
        price_cents=r.price_cents, fulfilment=Fulfilment(r.fulfilment),
        preferred=Preferred(days, r.preferred_from, r.preferred_to), channel=r.channel,
        sold_by=r.sold_by, sold_at=r.sold_at, renews_id=r.renews_id,
        renewed_by_id=r.renewed_by_id, reminded_at=r.reminded_at,
    )  # fmt: skip


def entitlement_in(conn: Connection, device_id: str, problem_kind: str, on: date) -> Package | None:
    """The package that pays a `problem_kind` job on the device opened `on`: in force
    that day, covering it, with a replacement left; the one ending first."""
    if problem_class(problem_kind) != "filter":
        return None
    rows = conn.execute(
        _select()
        .where(
            packages.c.device_id == device_id,
            packages.c.starts_on <= on,
            packages.c.ends_on > on,
        )
        .order_by(packages.c.ends_on, packages.c.id)
    ).all()
    for p in map(_package, rows):
        if p.covers_problem(problem_kind) and p.remaining != 0:
            return p
    return None


class Packages:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- plans ---------------------------------------------------------------------
    def plans(self, device_id: str | None = None, *, retired: bool = False) -> list[Plan]:
        """Every plan, or those a device can buy (its model's, then its type's)."""
        with self.db.engine.connect() as conn:
            q = sa.select(package_plans).order_by(package_plans.c.price_cents, package_plans.c.id)
            if not retired:
                q = q.where(package_plans.c.active.is_(True))
            if device_id is not None:
                q = q.where(package_plans.c.applies_to.in_(self._keys(conn, device_id)))
            return [Plan.from_row(r) for r in conn.execute(q)]

    @staticmethod
    def _keys(conn: Connection, device_id: str) -> list[str]:
        d = conn.execute(
            sa.select(devices.c.model, devices.c.device_type).where(devices.c.id == device_id)
        ).first()
        if d is None:
            raise NotFound("device", device_id)
        return ([f"model:{d.model}"] if d.model else []) + [f"type:{d.device_type}"]

    # -- sales ---------------------------------------------------------------------
    def sell(
        self,
        device_id: str,
        plan_id: str,
        *,
        sale_id: str,
        sold_by: str,
        channel: str,
        fulfilment: Fulfilment = Fulfilment.VISIT,
        preferred: Preferred | None = None,
        renews: int | None = None,
        now: datetime | None = None,
    ) -> tuple[Package, bool]:
        """Sell `plan_id` for the device; (the package, created). The same `sale_id`
        again is the same package; for another device or plan it is a `SaleConflict`."""
        now = now or datetime.now(UTC)
        preferred = preferred or Preferred()
        preferred.check()
        for _ in range(2):  # a concurrent seller of the same sale id: read theirs
            try:
                with self.db.engine.begin() as conn:
                    known = self._by_sale(conn, sale_id)
                    if known is not None:
                        return self._same_sale(known, device_id, plan_id), False
                    package_id = self._insert(
                        conn, device_id, plan_id, sale_id=sale_id, sold_by=sold_by,
                        channel=channel, fulfilment=fulfilment, preferred=preferred,
                        renews=renews, now=now,
                    )  # fmt: skip
                return self.get(package_id), True
            except sa.exc.IntegrityError:
                continue
        with self.db.engine.connect() as conn:
            known = self._by_sale(conn, sale_id)
        if known is None:
            raise PackageRefused(f"sale {sale_id} could not be recorded; try again")
        return self._same_sale(known, device_id, plan_id), False

    def renew(
        self,
        package_id: int,
        *,
        sale_id: str,
        sold_by: str,
        channel: str,
        plan_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Package, bool]:
        """Sell the next package for the same device (the same plan unless another is
        named), from the day this one ends; fulfilment and preferred times carry over."""
        old = self.get(package_id)
        return self.sell(
            old.device_id, plan_id or old.plan_id, sale_id=sale_id, sold_by=sold_by,
            channel=channel, fulfilment=old.fulfilment, preferred=old.preferred,
            renews=old.id, now=now,
        )  # fmt: skip

    def _insert(
        self,
        conn: Connection,
        device_id: str,
        plan_id: str,
        *,
        sale_id: str,
        sold_by: str,
        channel: str,
        fulfilment: Fulfilment,
        preferred: Preferred,
        renews: int | None,
        now: datetime,
    ) -> int:
        # one sale per device at a time: the next one starts when this one's cover ends
        conn.execute(sa.select(devices.c.id).where(devices.c.id == device_id).with_for_update())
        row = conn.execute(sa.select(package_plans).where(package_plans.c.id == plan_id)).first()
        if row is None:
            raise NotFound("package plan", plan_id)
        plan = Plan.from_row(row)
        keys = self._keys(conn, device_id)
        if plan.applies_to not in keys:
            raise PackageRefused(
                f"plan {plan_id} is for {plan.applies_to.split(':', 1)[1]}, not device "
                f"{device_id} ({', '.join(k.split(':', 1)[1] for k in keys)}): see its plans"
            )
        if not plan.active:
            raise PackageRefused(f"plan {plan_id} is no longer sold: see the device's plans")
        if fulfilment is Fulfilment.DIY and not plan.diy:
            raise PackageRefused(f"plan {plan_id} is fitted by a technician: it has no diy option")
        customer = conn.execute(
            sa.select(device_sites.c.customer_id).where(device_sites.c.device_id == device_id)
        ).scalar_one_or_none()
        if customer is None:
            raise PackageRefused(f"device {device_id} is not installed at a customer's site")
        today = now.astimezone(UTC).date()
        # a device still covered gets the new package from the day its cover ends
        covered_to = conn.execute(
            sa.select(sa.func.max(packages.c.ends_on)).where(packages.c.device_id == device_id)
        ).scalar_one_or_none()
        starts = max(today, covered_to) if covered_to else today
        return int(
            conn.execute(
                packages.insert()
                .values(
                    sale_id=sale_id, device_id=device_id, customer_id=customer,
                    plan_id=plan.id, starts_on=starts,
                    ends_on=add_months(starts, plan.months), covers=list(plan.covers),
                    replacements=plan.replacements, price_cents=plan.price_cents,
                    fulfilment=fulfilment.value, preferred_days=",".join(preferred.days) or None,
                    preferred_from=preferred.start, preferred_to=preferred.end,
                    channel=channel, sold_by=sold_by, sold_at=now, renews_id=renews,
                )
                .returning(packages.c.id)
            ).scalar_one()
        )  # fmt: skip

    @staticmethod
    def _by_sale(conn: Connection, sale_id: str) -> Package | None:
        row = conn.execute(_select().where(packages.c.sale_id == sale_id)).first()
        return _package(row) if row is not None else None

    @staticmethod
    def _same_sale(known: Package, device_id: str, plan_id: str) -> Package:
        if (known.device_id, known.plan_id) != (device_id, plan_id):
            raise SaleConflict(
                f"sale {known.sale_id} is package {known.id} ({known.plan_id} for "
                f"{known.device_id}): a new sale needs a new sale id"
            )
        return known

    def change(
        self,
        package_id: int,
        *,
        fulfilment: Fulfilment | None = None,
        preferred: Preferred | None = None,
    ) -> Package:
        """How the customer takes their replacements: by visit or diy, and when."""
        if preferred is not None:
            preferred.check()
        with self.db.engine.begin() as conn:
            p = self._get(conn, package_id)
            values: dict[str, Any] = {}
            if fulfilment is not None and fulfilment is not p.fulfilment:
                if fulfilment is Fulfilment.DIY:
                    diy = conn.execute(
                        sa.select(package_plans.c.diy).where(package_plans.c.id == p.plan_id)
                    ).scalar_one()
                    if not diy:
                        raise PackageRefused(
                            f"plan {p.plan_id} is fitted by a technician: it has no diy option"
                        )
                values["fulfilment"] = fulfilment.value
            if preferred is not None:
                values |= {
                    "preferred_days": ",".join(preferred.days) or None,
                    "preferred_from": preferred.start,
                    "preferred_to": preferred.end,
                }
            if values:
                conn.execute(packages.update().where(packages.c.id == package_id).values(values))
        return self.get(package_id)

    # -- reading -------------------------------------------------------------------
    def get(self, package_id: int) -> Package:
        with self.db.engine.connect() as conn:
            return self._get(conn, package_id)

    @staticmethod
    def _get(conn: Connection, package_id: int) -> Package:
        row = conn.execute(_select().where(packages.c.id == package_id)).first()
        if row is None:
            raise NotFound("package", package_id)
        return _package(row)

    def find(
        self,
        *,
        device_ids: Sequence[str] | None = None,
        customer_id: str | None = None,
        territories: Sequence[str] | None = None,
        ending_before: date | None = None,
        limit: int = 500,
    ) -> list[Package]:
        """Packages, newest sale first: a device's, a customer's, those of devices in
        some territories, or those ending soon."""
        q = _select().order_by(packages.c.sold_at.desc(), packages.c.id.desc()).limit(limit)
        if device_ids is not None:
            q = q.where(packages.c.device_id.in_(list(device_ids)))
        if customer_id is not None:
            q = q.where(packages.c.customer_id == customer_id)
        if territories is not None:
            q = q.where(
                packages.c.device_id.in_(
                    sa.select(device_sites.c.device_id).where(
                        device_sites.c.territory_id.in_(list(territories))
                    )
                )
            )
        if ending_before is not None:
            q = q.where(packages.c.ends_on < ending_before)
        with self.db.engine.connect() as conn:
            return [_package(r) for r in conn.execute(q)]

    # -- renewal reminders ---------------------------------------------------------
    def remind_renewals(self, *, now: datetime | None = None) -> list[int]:
        """Queue one renewal reminder per package ending within a month, or with no
        replacement left, that nobody renewed yet; returns the packages reminded."""
        now = now or datetime.now(UTC)
        today = now.astimezone(UTC).date()
        with self.db.engine.begin() as conn:
            rows = conn.execute(
                _select().where(
                    packages.c.reminded_at.is_(None),
                    packages.c.starts_on <= today,
                    packages.c.ends_on > today,
                )
            ).all()
            due = [
                p
                for p in map(_package, rows)
                if p.renewed_by_id is None
                and (p.ends_on - today <= REMIND_BEFORE or p.remaining == 0)
            ]
            kinds = dict(
                conn.execute(
                    sa.select(devices.c.id, devices.c.device_type).where(
                        devices.c.id.in_({p.device_id for p in due})
                    )
                ).all()
            )
            for p in due:
                changed = conn.execute(
                    packages.update()
                    .where(packages.c.id == p.id, packages.c.reminded_at.is_(None))
                    .values(reminded_at=now)
                ).rowcount
                if changed:  # a concurrent pass reminded it first
                    enqueue(
                        conn, customer_id=p.customer_id, kind=Kind.PACKAGE_RENEWAL,
                        data={"package_id": p.id, "device_id": p.device_id,
                              "device_type": kinds.get(p.device_id),
                              "ends_on": p.ends_on.isoformat(), "remaining": p.remaining},
                        now=now, key=f"package-{p.id}",
                    )  # fmt: skip
        return [p.id for p in due]
