"""A technician's jobs: the live ones and today's round, accept or decline, set off (the
customer is told), start on site, and complete with the report: parts, fees, the serial
read off the unit and photos (a multipart upload, each checked for type and size)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from pydantic import BaseModel, Field, ValidationError

from api import views
from api.accounts import Principal
from api.context import ApiContext
from api.deps import Db, OrderId, Technician, context
from api.guard import NUL_MESSAGE, has_nul
from api.schemas import Body, OnTheWay, OrderPublic, Problem, Reason
from db.database import Database
from db.tables import technicians, work_orders
from service.appointments import Appointments
from service.completion import (
    Completion,
    CompletionReport,
    Fee,
    Outcome,
    PartUsed,
)
from service.dispatch import Dispatcher
from service.errors import BadPhoto, CompletionRefused
from service.lifecycle import LIVE, State
from service.orders import WorkOrder, WorkOrders
from service.photos import MAX_PHOTO_BYTES, Photo

router = APIRouter(prefix="/api/v1/jobs", tags=["technicians"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not a technician key, or not your job"},
    404: {"model": Problem, "description": "no such job of yours"},
    409: {"model": Problem, "description": "the job is not in a state that allows it"},
    422: {"model": Problem, "description": "the report is not valid; the message says why"},
}
MAX_PHOTOS = 10


@router.get("", response_model=list[OrderPublic])
async def my_jobs(
    who: Technician, db: Db, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[OrderPublic]:
    """Your live jobs, newest first."""
    f = views.OrderFilter(states=tuple(s.value for s in LIVE))
    rows = await asyncio.to_thread(views.orders, db, who, f, limit=limit, offset=0)
    return [OrderPublic.model_validate(o) for o in rows]


def _today(db: Database, who: Principal, now: datetime) -> list[WorkOrder]:
    with db.engine.connect() as conn:
        tz = conn.execute(
            sa.select(technicians.c.timezone).where(technicians.c.id == who.technician_id)
        ).scalar_one_or_none()
        zone = ZoneInfo(tz or "UTC")
        day = now.astimezone(zone).date()
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
        end = start + timedelta(days=1)
        wo = work_orders.c
        rows = conn.execute(
            sa.select(work_orders)
            .where(wo.technician_id == who.technician_id)
            .where(
                sa.or_(
                    wo.state == State.IN_PROGRESS.value,
                    sa.and_(
                        wo.state == State.SCHEDULED.value,
                        wo.scheduled_start >= start,
                        wo.scheduled_start < end,
                    ),
                )
            )
            .order_by(wo.scheduled_start, wo.id)
        )
        return [WorkOrder.from_row(r) for r in rows]


@router.get("/today", response_model=list[OrderPublic])
async def today(who: Technician, db: Db) -> list[OrderPublic]:
    """Today's round in your time zone: the visits booked today, in order, and any job
    you have started and not finished."""
    rows = await asyncio.to_thread(_today, db, who, datetime.now(UTC))
    return [OrderPublic.model_validate(o) for o in rows]


def _mine(db: Database, who: Principal, order_id: int) -> str:
    views.order_in_scope(db, who, order_id)
    assert who.technician_id is not None
    return who.technician_id


@router.post("/{order_id}/accept", response_model=OrderPublic, responses=REFUSED)
async def accept(order_id: OrderId, who: Technician, db: Db) -> OrderPublic:
    def run() -> WorkOrder:
        return Dispatcher(db).accept(order_id, _mine(db, who, order_id))

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/{order_id}/decline", response_model=OrderPublic, responses=REFUSED)
async def decline(order_id: OrderId, body: Reason, who: Technician, db: Db) -> OrderPublic:
    """Decline with a reason: the job goes back to dispatch, never to you again."""

    def run() -> WorkOrder:
        Dispatcher(db).decline(order_id, _mine(db, who, order_id), body.reason)
        return WorkOrders(db).get(order_id)

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/{order_id}/on-the-way", response_model=OrderPublic, responses=REFUSED)
async def on_the_way(order_id: OrderId, body: OnTheWay, who: Technician, db: Db) -> OrderPublic:
    """You set off for a booked visit: the customer is told when you will arrive."""

    def run() -> WorkOrder:
        tech = _mine(db, who, order_id)
        Appointments(WorkOrders(db)).on_the_way(order_id, tech, body.eta)
        return WorkOrders(db).get(order_id)

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/{order_id}/start", response_model=OrderPublic, responses=REFUSED)
async def start(order_id: OrderId, who: Technician, db: Db) -> OrderPublic:
    """On site: the booked visit begins."""

    def run() -> WorkOrder:
        tech = _mine(db, who, order_id)
        return WorkOrders(db).transition(
            order_id, State.IN_PROGRESS, actor=tech, expect=State.SCHEDULED
        )

    return OrderPublic.model_validate(await asyncio.to_thread(run))


class PartIn(Body):
    sku: str = Field(min_length=1)
    qty: int = Field(default=1, ge=1)


class FeeIn(Body):
    item: str = Field(min_length=1)
    cents: int = Field(ge=0)


class CompletionIn(Body):
    """The `report` field of the multipart form, as JSON."""

    outcome: Outcome
    serial: str = Field(min_length=1, description="Read off the unit on site")
    parts: list[PartIn] = Field(default_factory=list)
    fees: list[FeeIn] = Field(default_factory=list)
    notes: str = Field(default="", max_length=5000)
    confirmed_fault: str | None = Field(default=None, description="What it really was")
    filter_stages: list[str] = Field(default_factory=list, description="Stages fitted")
    filter_found: dict[str, float] = Field(
        default_factory=dict, description="Per stage, the old filter's share used up (0-1.5)"
    )


class BillLinePublic(BaseModel):
    item: str
    cents: int
    payer: str = Field(description="customer, maker (under warranty) or package")


class Completed(BaseModel):
    order: OrderPublic
    bill: list[BillLinePublic] = Field(description="Parts first, then fees")
    total_cents: int
    customer_cents: int = Field(description="What the customer pays: their lines only")
    cover: str = Field(description="The warranty or package that pays the rest, or why not")


EXAMPLE_REPORT = (
    '{"outcome": "fixed", "serial": "SN-AP-1", "parts": [{"sku": "AP-HEPA-01"}], '
    '"filter_found": {"main": 0.9}}'
)


@router.post("/{order_id}/complete", response_model=Completed, responses=REFUSED)
async def complete(
    order_id: OrderId,
    who: Technician,
    db: Db,
    ctx: Annotated[ApiContext, Depends(context)],
    report: Annotated[str, Form(description=f"The report as JSON, e.g. `{EXAMPLE_REPORT}`")],
    photos: Annotated[
        list[UploadFile] | None,
        File(
            description=f"JPEG, PNG or WebP; at most {MAX_PHOTOS}, {MAX_PHOTO_BYTES >> 20} MB each"
        ),
    ] = None,
) -> Completed:
    """Complete a started job: the parts come off your van (or the outlet), fees are
    billed, the serial must match the registry, photos are kept, filters fitted restart
    their wear, and the customer gets the bill and a rating request."""
    names = [f.filename or "" for f in photos or []]
    if any(has_nul("application/json", t.encode()) for t in (report, *names)):
        raise CompletionRefused(NUL_MESSAGE)
    try:
        body = CompletionIn.model_validate_json(report)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "report"
        raise CompletionRefused(f"report.{where}: {first['msg']}") from None
    files = photos or []
    if len(files) > MAX_PHOTOS:
        raise CompletionRefused(f"{len(files)} photos: at most {MAX_PHOTOS}")
    taken = []
    for f in files:
        content = await f.read(MAX_PHOTO_BYTES + 1)  # never more than the limit in memory
        if len(content) > MAX_PHOTO_BYTES:
            raise BadPhoto(f.filename or "photo", f"larger than {MAX_PHOTO_BYTES // 2**20} MB")
        taken.append(Photo(f.filename or "photo", content))

    def run() -> Completed:
        tech = _mine(db, who, order_id)
        done, bill = Completion(WorkOrders(db), ctx.photo_dir).complete(
            order_id,
            CompletionReport(
                technician_id=tech,
                outcome=body.outcome,
                serial=body.serial,
                parts=[PartUsed(p.sku, p.qty) for p in body.parts],
                fees=[Fee(f.item, f.cents) for f in body.fees],
                photos=taken,
                notes=body.notes,
                confirmed_fault=body.confirmed_fault,
                filter_stages=body.filter_stages,
                filter_found=body.filter_found,
            ),
        )
        return Completed(
            order=OrderPublic.model_validate(done),
            bill=[BillLinePublic(item=x.item, cents=x.cents, payer=x.payer) for x in bill.lines],
            total_cents=bill.total_cents,
            customer_cents=bill.customer_cents,
            cover=bill.cover,
        )

    return await asyncio.to_thread(run)
