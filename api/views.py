"""The API's read side: what a device looks like to the people who use it, assembled
from the registry, the device state, the predictions, the alerts and the work orders.
Scoping is applied here, so a route cannot forget it: a device outside the caller's
scope is `NotFound`, as if it did not exist (its id says nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from telemetry.metrics import device_type as device_type_row
from workorders.accounts import Principal, Role
from workorders.db import Database
from workorders.errors import NotFound
from workorders.lifecycle import LIVE
from workorders.orders import WorkOrder, WorkOrders
from workorders.parts_forecast import Predictions
from workorders.tables import alerts, customers, device_sites, device_state, devices, work_orders

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


def _scope(q: sa.Select[Any], who: Principal) -> sa.Select[Any]:
    if who.role is Role.CUSTOMER:
        return q.where(device_sites.c.customer_id == who.customer_id)
    if who.role is Role.TECHNICIAN:
        mine = sa.select(work_orders.c.device_id).where(
            work_orders.c.technician_id == who.technician_id
        )
        return q.where(devices.c.id.in_(mine))
    if who.role is Role.OPS and who.territories:
        return q.where(device_sites.c.territory_id.in_(who.territories))
    return q


def _devices_query() -> sa.Select[Any]:
    return (
        sa.select(
            devices.c.id,
            devices.c.device_type,
            devices.c.serial,
            device_sites.c.customer_id,
            device_sites.c.territory_id,
            device_sites.c.address,
            customers.c.language,
        )
        .select_from(devices)
        .outerjoin(device_sites, device_sites.c.device_id == devices.c.id)
        .outerjoin(customers, customers.c.id == device_sites.c.customer_id)
    )


def list_devices(db: Database, who: Principal, *, limit: int, offset: int) -> list[DeviceRow]:
    q = _scope(_devices_query(), who).order_by(devices.c.id).limit(limit).offset(offset)
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


def health(db: Database, who: Principal, device_id: str, now: datetime) -> dict[str, Any]:
    """Everything the consumer app shows about one device."""
    device = get_device(db, who, device_id)
    table = device_type_row(device.device_type)
    with db.engine.connect() as conn:
        state = conn.execute(
            sa.select(device_state).where(device_state.c.device_id == device_id)
        ).first()
        firing = conn.execute(
            sa.select(alerts.c.title, alerts.c.severity, alerts.c.rule_id, alerts.c.fired_at)
            .where(alerts.c.device_id == device_id, alerts.c.state == "firing")
            .order_by(alerts.c.fired_at)
        ).all()
        job = conn.execute(
            sa.select(work_orders)
            .where(
                work_orders.c.device_id == device_id,
                work_orders.c.state.in_([s.value for s in LIVE]),
            )
            .order_by(work_orders.c.created_at.desc())
            .limit(1)
        ).first()
    metrics: Mapping[str, Any] = dict(state.latest_metrics) if state else {}
    readings = [
        {"name": name, "value": value, "unit": table.by_name[name].unit}
        for name, value in sorted(metrics.items())
        if name in table.by_name
    ]
    filters = []
    for p in Predictions(db).for_devices([device_id]):
        days = (p.exhausted_at - now).total_seconds() / 86400
        condition = None if p.consumed is None else max(0.0, 1.0 - p.consumed)
        filters.append(
            {
                "stage": p.stage,
                "condition_pct": None if condition is None else round(100 * condition, 1),
                "status": filter_status(condition, days),
                "predicted_exhaustion": p.exhausted_at,
                "low": p.low,
                "high": p.high,
                "rated_exhaustion": p.rated_at,
                "model_version": p.model_version,
            }
        )
    return {
        "device_id": device.id,
        "device_type": device.device_type,
        "online": bool(state.online) if state else False,
        "last_seen": state.last_received_at if state else None,
        "readings": readings,
        "filters": filters,
        "problems": [
            {"title": a.title, "severity": a.severity, "since": a.fired_at} for a in firing
        ],
        "open_job": None
        if job is None
        else {
            "id": job.id,
            "problem": job.problem_kind,
            "state": job.state,
            "scheduled_start": job.scheduled_start,
            "scheduled_end": job.scheduled_end,
            "technician_id": job.technician_id,
        },
    }


@dataclass(frozen=True, slots=True)
class OrderFilter:
    states: tuple[str, ...] = ()
    origin: str | None = None
    problem: str | None = None
    territory: str | None = None
    min_priority: int | None = None


def orders(
    db: Database, who: Principal, f: OrderFilter, *, limit: int, offset: int
) -> list[WorkOrder]:
    """The work-order queue in the caller's scope (ops: their territories), newest first."""
    q = sa.select(work_orders).order_by(work_orders.c.id.desc()).limit(limit).offset(offset)
    if who.role is Role.OPS and who.territories:
        q = q.where(work_orders.c.territory_id.in_(who.territories))
    if who.role is Role.TECHNICIAN:
        q = q.where(work_orders.c.technician_id == who.technician_id)
    if who.role is Role.CUSTOMER:
        q = q.where(work_orders.c.customer_id == who.customer_id)
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
        or (who.role is Role.CUSTOMER and order.customer_id == who.customer_id)
    )
    if not visible:
        raise NotFound("work order", order_id)
    return order
