"""The API's read side: what a device looks like to the people who use it, assembled
from the registry, the device state, the predictions, the alerts and the work orders.
Scoping is applied here, so a route cannot forget it: a device outside the caller's
scope is `NotFound`, as if it did not exist (its id says nothing)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from api.accounts import Principal, Role
from db.database import Database
from db.errors import NotFound
from db.tables import (
    LIVE_WHERE,
    alerts,
    customers,
    device_sites,
    device_state,
    devices,
    filter_predictions,
    shipments,
    technicians,
    territories,
    work_orders,
)
from fleet.predictions import TYPICAL_USE
from service.appointments import Appointments
from service.callbacks import CallbackDue, Callbacks
from service.complaints import Complaint, Complaints
from service.lifecycle import LIVE, State, allowed
from service.orders import WorkOrder, WorkOrders
from service.parts_forecast import DemandRow
from telemetry.profile import Profile, ProfileSet, shipped

WARNING_LEFT, CRITICAL_LEFT = 0.20, 0.05  # filter condition below which it warns / is critical
WARNING_DAYS = 14.0  # or predicted spent within this many days


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    device_type: str
    customer_id: str | None
    territory_id: str | None
    address: str | None
    serial: str | None
    language: str | None
    model: str | None = None
    firmware: str | None = None
    batch: str | None = None  # the production lot
    manufactured_on: date | None = None


def _scope(q: sa.Select[Any], who: Principal) -> sa.Select[Any]:
    """`q` (over devices and their sites) limited to the caller's devices."""
    limit = _scope_clause(_scope_kind(who))
    return q if limit is None else q.where(limit).params(scope=_scope_value(who))


def _scope_kind(who: Principal) -> str:
    if who.role in (Role.CUSTOMER, Role.TECHNICIAN):
        return who.role.value
    return "territories" if who.role is Role.OPS and who.territories else "all"


def _scope_value(who: Principal) -> Any:
    return {
        Role.CUSTOMER: who.customer_id,
        Role.TECHNICIAN: who.technician_id,
        Role.OPS: list(who.territories),
    }.get(who.role)


def _scope_clause(kind: str) -> sa.ColumnElement[bool] | None:
    """Which devices a kind of caller sees, with the caller's value bound as `scope`: a
    customer their own, a technician those of their live jobs (a closed job's customer,
    device and address are no longer theirs to see), ops their territories."""
    return {
        "customer": device_sites.c.customer_id == sa.bindparam("scope"),
        "technician": devices.c.id.in_(
            sa.select(work_orders.c.device_id).where(
                work_orders.c.technician_id == sa.bindparam("scope"), sa.text(LIVE_WHERE)
            )
        ),
        "territories": device_sites.c.territory_id.in_(sa.bindparam("scope", expanding=True)),
    }.get(kind)


def _devices_query() -> sa.Select[Any]:
    return (
        sa.select(
            devices.c.id,
            devices.c.device_type,
            devices.c.serial,
            devices.c.model,
            devices.c.firmware,
            devices.c.batch,
            devices.c.manufactured_on,
            device_sites.c.customer_id,
            device_sites.c.territory_id,
            device_sites.c.address,
            customers.c.language,
        )
        .select_from(devices)
        .outerjoin(device_sites, device_sites.c.device_id == devices.c.id)
        .outerjoin(customers, customers.c.id == device_sites.c.customer_id)
    )


def list_devices(
    db: Database, who: Principal, *, limit: int, offset: int, search: str | None = None
) -> list[DeviceRow]:
    """Devices in scope; `search` matches the start of the id, serial, customer id or the
    customer's phone number, or any part of the address (case-insensitive): what a
    call-centre agent has when a customer calls."""
    q = _scope(_devices_query(), who).order_by(devices.c.id).limit(limit).offset(offset)
    if search:
        like = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(
            sa.or_(
                devices.c.id.ilike(f"{like}%", escape="\\"),
                devices.c.serial.ilike(f"{like}%", escape="\\"),
                device_sites.c.customer_id.ilike(f"{like}%", escape="\\"),
                customers.c.phone.ilike(f"{like}%", escape="\\"),
                device_sites.c.address.ilike(f"%{like}%", escape="\\"),
            )
        )
    with db.engine.connect() as conn:
        return [DeviceRow(**r._mapping) for r in conn.execute(q)]


def get_device(db: Database, who: Principal, device_id: str) -> DeviceRow:
    q = _scope(_devices_query(), who).where(devices.c.id == device_id)
    with db.engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise NotFound("device", device_id)
    return DeviceRow(**row._mapping)


def filter_status(condition: float | None, days_left: float | None) -> str:
    """OK, Warning or Critical, as Matter's filter-monitoring cluster says it."""
    if (condition is not None and condition <= CRITICAL_LEFT) or (
        days_left is not None and days_left <= 0
    ):
        return "critical"
    if (condition is not None and condition <= WARNING_LEFT) or (
        days_left is not None and days_left <= WARNING_DAYS
    ):
        return "warning"
    return "ok"


def health(
    conn: sa.Connection,
    who: Principal,
    device_id: str,
    now: datetime,
    profiles: ProfileSet | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Everything the consumer app shows about one device, read in one statement. Give
    it a reader connection (`Database.read`); `ahealth` is the same without one. The card
    is the device family's profile's, worded in `language` (default English)."""
    statement = _health_statement(conn.dialect.name, _scope_kind(who))
    row = conn.execute(statement, {"device_id": device_id, "scope": _scope_value(who)}).first()
    return _health(row, device_id, now, profiles or shipped(), language)


async def ahealth(
    db: Database,
    who: Principal,
    device_id: str,
    now: datetime,
    profiles: ProfileSet | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """`health` for the consumer app, which asks for it more than for anything else: on
    PostgreSQL a prepared statement on psycopg directly (`Database.aone`)."""
    statement = _health_statement(db.dialect, _scope_kind(who))
    row = await db.aone(statement, {"device_id": device_id, "scope": _scope_value(who)})
    return _health(row, device_id, now, profiles or shipped(), language)


def _health(
    row: Any, device_id: str, now: datetime, profiles: ProfileSet, language: str | None
) -> dict[str, Any]:
    if row is None:
        raise NotFound("device", device_id)
    profile = profiles.get(row.device_type)
    table = profile.device_type.by_name if profile is not None else {}
    metrics: Mapping[str, Any] = row.latest_metrics or {}
    filters = []
    for p in sorted(row.predictions or (), key=lambda p: p["stage"]):
        exhausted = _when(p["exhausted_at"])
        assert exhausted is not None  # the column is NOT NULL
        days = (exhausted - now).total_seconds() / 86400
        consumed = p["consumed"]
        condition = None if consumed is None else max(0.0, 1.0 - consumed)
        consumable = profile.consumable(p["stage"]) if profile is not None else None
        filters.append(
            {
                "stage": p["stage"],
                "name": consumable.name if consumable is not None else None,
                "condition_pct": None if condition is None else round(100 * condition, 1),
                "status": filter_status(condition, days),
                "predicted_exhaustion": exhausted,
                "low": _when(p["low"]),
                "high": _when(p["high"]),
                "rated_exhaustion": _when(p["rated_at"]),
                "model_version": p["model_version"],
                "basis": "typical_use" if p.get("source") == TYPICAL_USE else "measured",
            }
        )
    job = row.open_job
    return {
        "device_id": row.id,
        "device_type": row.device_type,
        "online": bool(row.online),
        "last_seen": row.last_received_at,
        "readings": [
            {"name": name, "value": value, "unit": table[name].unit}
            for name, value in sorted(metrics.items())
            if name in table
        ],
        "filters": filters,
        "card": _card(profile, metrics, filters, language),
        "problems": [
            {"title": a["title"], "severity": a["severity"], "since": _when(a["fired_at"])}
            for a in sorted(row.problems or (), key=lambda a: a["fired_at"])
        ],
        "open_job": None
        if job is None
        else {
            "id": job["id"],
            "problem": job["problem_kind"],
            "state": job["state"],
            "scheduled_start": _when(job["scheduled_start"]),
            "scheduled_end": _when(job["scheduled_end"]),
            "technician_id": job["technician_id"],
        },
    }


def _card(
    profile: Profile | None,
    metrics: Mapping[str, Any],
    filters: list[dict[str, Any]],
    language: str | None,
) -> list[dict[str, Any]]:
    """The profile's health card: its lines, in its order, in the customer's language."""
    if profile is None:
        return []
    table = profile.device_type.by_name
    by_stage = {f["stage"]: f for f in filters}
    lines: list[dict[str, Any]] = []
    for item in profile.doc.health_card:
        label = item.label.text(language)
        if item.metric is not None:
            lines.append(
                {
                    "label": label,
                    "metric": item.metric,
                    "value": metrics.get(item.metric),
                    "unit": table[item.metric].unit if item.metric in table else None,
                }
            )
        else:
            f = by_stage.get(item.consumable or "", {})
            lines.append(
                {
                    "label": label,
                    "consumable": item.consumable,
                    "condition_pct": f.get("condition_pct"),
                    "status": f.get("status"),
                    "predicted_exhaustion": f.get("predicted_exhaustion"),
                    "basis": f.get("basis"),
                }
            )
    return lines


@functools.cache
def _health_statement(dialect: str, scope: str) -> sa.Select[Any]:
    """Device, site, live state, predictions, firing alerts and the open job in one row;
    the lists come back as JSON (built per dialect). Built once per dialect and scope, so
    a request only binds its values."""
    if dialect == "postgresql":
        obj, agg = sa.func.json_build_object, sa.func.json_agg
    else:
        obj, agg = sa.func.json_object, sa.func.json_group_array

    def fields(table: sa.Table, *names: str) -> Any:
        return obj(*(x for n in names for x in (sa.literal(n), table.c[n])))

    fp, al, wo = filter_predictions, alerts, work_orders
    d = devices.c
    predictions = (
        sa.select(
            agg(
                fields(
                    fp,
                    "stage",
                    "exhausted_at",
                    "low",
                    "high",
                    "consumed",
                    "rated_at",
                    "model_version",
                    "source",
                )
            )
        )
        .where(fp.c.device_id == d.id)
        .scalar_subquery()
    )
    problems = (
        sa.select(agg(fields(al, "title", "severity", "fired_at")))
        .where(al.c.device_id == d.id, al.c.state == "firing")
        .scalar_subquery()
    )
    job = (
        sa.select(
            fields(
                wo,
                "id",
                "problem_kind",
                "state",
                "scheduled_start",
                "scheduled_end",
                "technician_id",
            )
        )
        # a literal: no per-call expansion; a customer does not see a proposal ops have
        # not approved yet
        .where(
            wo.c.device_id == d.id,
            sa.text(LIVE_WHERE + (" AND state <> 'proposed'" if scope == "customer" else "")),
        )
        .order_by(wo.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    q = (
        sa.select(
            d.id,
            d.device_type,
            device_state.c.online,
            device_state.c.last_received_at,
            device_state.c.latest_metrics,
            sa.type_coerce(predictions, sa.JSON).label("predictions"),
            sa.type_coerce(problems, sa.JSON).label("problems"),
            sa.type_coerce(job, sa.JSON).label("open_job"),
        )
        .select_from(devices)
        .outerjoin(device_sites, device_sites.c.device_id == d.id)
        .outerjoin(device_state, device_state.c.device_id == d.id)
        .where(d.id == sa.bindparam("device_id"))
    )
    limit = _scope_clause(scope)
    return q if limit is None else q.where(limit)


def _when(value: str | None) -> datetime | None:
    """A time from a JSON-built row: ISO text, with its offset (PostgreSQL) or naive UTC
    (SQLite)."""
    if value is None:
        return None
    t = datetime.fromisoformat(value)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    states: tuple[str, ...] = ()
    origin: str | None = None
    problem: str | None = None
    territory: str | None = None
    min_priority: int | None = None
    sla: str | None = None  # at_risk | breached: live orders near or past their due time
    device_id: str | None = None


# a proposal ops have not approved, or turned down, was never the customer's job
UNSEEN_BY_CUSTOMERS = frozenset({State.PROPOSED, State.REJECTED})


def orders(
    db: Database,
    who: Principal,
    f: OrderFilter,
    *,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> list[WorkOrder]:
    """The work-order queue in the caller's scope (ops: their territories), newest first;
    with an SLA filter, most overdue first."""
    q = sa.select(work_orders).limit(limit).offset(offset)
    if f.sla:
        now = now or datetime.now(UTC)
        wo = work_orders.c
        q = q.where(wo.state.in_([s.value for s in LIVE])).order_by(wo.due_at, wo.id)
        if f.sla == "breached":
            q = q.where(wo.due_at < now)
        else:
            q = q.where(wo.due_at >= now, wo.due_at <= now + WorkOrders(db).sla.at_risk)
    else:
        q = q.order_by(work_orders.c.id.desc())
    if f.device_id:
        q = q.where(work_orders.c.device_id == f.device_id)
    if who.role is Role.OPS and who.territories:
        q = q.where(work_orders.c.territory_id.in_(who.territories))
    if who.role is Role.TECHNICIAN:
        q = q.where(work_orders.c.technician_id == who.technician_id)
    if who.role is Role.CUSTOMER:
        q = q.where(
            work_orders.c.customer_id == who.customer_id,
            work_orders.c.state.notin_(list(UNSEEN_BY_CUSTOMERS)),
        )
    if f.states:
        q = q.where(work_orders.c.state.in_(f.states))
    if f.origin:
        q = q.where(work_orders.c.origin == f.origin)
    if f.problem:
        q = q.where(work_orders.c.problem_kind == f.problem)
    if f.territory:
        q = q.where(work_orders.c.territory_id == f.territory)
    if f.min_priority is not None:
        q = q.where(work_orders.c.priority >= f.min_priority)
    with db.engine.connect() as conn:
        return [WorkOrder.from_row(r) for r in conn.execute(q)]


def order_in_scope(db: Database, who: Principal, order_id: int) -> WorkOrder:
    """One order, or `NotFound` when it is outside the caller's scope."""
    order = WorkOrders(db).get(order_id)
    visible = (
        who.role is Role.ADMIN
        or (who.role is Role.OPS and (not who.territories or order.territory_id in who.territories))
        or (who.role is Role.TECHNICIAN and order.technician_id == who.technician_id)
        or (
            who.role is Role.CUSTOMER
            and order.customer_id == who.customer_id
            and order.state not in UNSEEN_BY_CUSTOMERS
        )
    )
    if not visible:
        raise NotFound("work order", order_id)
    return order


def order_detail(db: Database, who: Principal, order_id: int, now: datetime) -> dict[str, Any]:
    """One order with its evidence, history, SLA standing, offered slots and next moves."""
    order = order_in_scope(db, who, order_id)
    wo = WorkOrders(db)
    offered = []
    if order.state in (State.ACCEPTED, State.SCHEDULED):
        offered = Appointments(wo).offered(order_id)
    timezone = timezone_of(db, order.customer_id)
    history = wo.history(order_id)
    if who.role is Role.CUSTOMER:  # the audit trail names staff; a customer sees the moves
        history = [
            replace(h, actor="you" if h.actor.startswith("customer:") else "FleetCare")
            for h in history
        ]
    staff = who.role is not Role.CUSTOMER  # SLA standing and moves are ops' business
    return {
        **{k: getattr(order, k) for k in ORDER_FIELDS},
        "sla": wo.sla_status(order, now).value if staff else None,
        "unassignable_reason": order.unassignable_reason if staff else None,
        "evidence": wo.evidence(order_id) if staff else [],
        "history": history,
        "offered_slots": [
            {
                "start": s.start,
                "end": s.end,
                "before_due": s.before_due,
                "label": s.label(timezone),
            }
            for s in offered
        ],
        "allowed": allowed(order.state) if staff else [],
    }


def timezone_of(db: Database, customer_id: str | None) -> str:
    if customer_id is None:
        return "UTC"
    with db.engine.connect() as conn:
        tz = conn.execute(
            sa.select(customers.c.timezone).where(customers.c.id == customer_id)
        ).scalar_one_or_none()
    return tz or "UTC"


ORDER_FIELDS = (
    "id",
    "device_id",
    "device_type",
    "problem_kind",
    "origin",
    "state",
    "title",
    "priority",
    "territory_id",
    "technician_id",
    "created_at",
    "due_at",
    "sla_started_at",
    "scheduled_start",
    "scheduled_end",
    "version",
)


# -- ops limited to territories: what is theirs beyond orders and devices ----------------
def outlets_of(db: Database, who: Principal) -> set[str] | None:
    """The outlets serving the caller's territories; None: every outlet (ops without
    territory limits, admin)."""
    if not who.territories:
        return None
    with db.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(territories.c.outlet_id).where(
                    territories.c.id.in_(list(who.territories))
                )
            ).scalars()
        )


def technicians_in_scope(db: Database, who: Principal) -> list[str]:
    """Active technicians the caller may give a job to: those of their outlets."""
    q = sa.select(technicians.c.id).where(technicians.c.active.is_(True))
    mine = outlets_of(db, who)
    if mine is not None:
        q = q.where(technicians.c.outlet_id.in_(sorted(mine)))
    with db.engine.connect() as conn:
        return list(conn.execute(q.order_by(technicians.c.id)).scalars())


def technician_in_scope(db: Database, who: Principal, technician_id: str) -> None:
    """`NotFound` for a technician of another territory's outlet (as for a job there)."""
    mine = outlets_of(db, who)
    if mine is None:
        return
    with db.engine.connect() as conn:
        outlet = conn.execute(
            sa.select(technicians.c.outlet_id).where(technicians.c.id == technician_id)
        ).scalar()
    if outlet not in mine:
        raise NotFound("technician", technician_id)


def parts_in_scope(db: Database, who: Principal, rows: list[DemandRow]) -> list[DemandRow]:
    """Parts demand rows of the caller's territories (by territory) or outlets."""
    if not who.territories:
        return rows
    mine = outlets_of(db, who) or set()
    return [
        r
        for r in rows
        if (r.territory_id in who.territories if r.territory_id else r.outlet_id in mine)
    ]


# -- after the visit: callbacks and complaints in the caller's scope -----------------------
def callbacks_due(db: Database, who: Principal, limit: int) -> list[CallbackDue]:
    """The callback queue of the caller's outlets."""
    return Callbacks(WorkOrders(db)).due(outlets=outlets_of(db, who), limit=limit)


def complaint_visible(db: Database, who: Principal, c: Complaint) -> bool:
    """A customer's own cases; ops their outlets' (all without territory limits)."""
    if who.role is Role.CUSTOMER:
        return c.customer_id == who.customer_id
    mine = outlets_of(db, who)
    return mine is None or c.outlet_id in mine


def complaints(
    db: Database,
    who: Principal,
    *,
    state: str | None = None,
    level: str | None = None,
    outlet: str | None = None,
    limit: int = 100,
) -> list[Complaint]:
    customer = who.customer_id if who.role is Role.CUSTOMER else None
    mine = None if customer is not None else outlets_of(db, who)
    return Complaints(db).find(
        state=state, level=level, outlet_id=outlet, customer_id=customer, outlets=mine,
        limit=limit,
    )  # fmt: skip


def complaint_in_scope(db: Database, who: Principal, complaint_id: int) -> Complaint:
    case = Complaints(db).get(complaint_id)
    if not complaint_visible(db, who, case):
        raise NotFound("complaint", str(complaint_id))
    return case


def shipments_due(db: Database, who: Principal, limit: int) -> list[dict[str, Any]]:
    """Diy filter replacements of the caller's outlets: to ship (open), and shipped but
    not yet fitted; the most urgent first."""
    q = (
        sa.select(
            work_orders.c.id.label("order_id"),
            work_orders.c.device_id,
            work_orders.c.customer_id,
            work_orders.c.outlet_id,
            work_orders.c.problem_kind,
            work_orders.c.state,
            work_orders.c.created_at,
            work_orders.c.due_at,
            shipments.c.carrier,
            shipments.c.tracking,
            shipments.c.shipped_at,
        )
        .outerjoin(shipments, shipments.c.order_id == work_orders.c.id)
        .where(
            work_orders.c.fulfilment == "diy",
            work_orders.c.state.in_([State.OPEN.value, State.IN_PROGRESS.value]),
        )
        .order_by(work_orders.c.due_at, work_orders.c.id)
        .limit(limit)
    )
    outlets = outlets_of(db, who)
    if outlets is not None:
        q = q.where(work_orders.c.outlet_id.in_(sorted(outlets)))
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
