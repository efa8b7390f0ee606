"""The outlet network: the hierarchy (maker → region → outlet → technician), the jobs
offered to outlets and their answers, moving a job to another outlet, and the outlets'
settlement statements. Ops limited to territories act for their outlets only; naming
another outlet for a job is for ops without limits (the region's, the maker's)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse

from api import views
from api.deps import Db, Ops, OrderId
from api.routes.aftercare import _period
from api.schemas import (
    IsoDate,
    OfferPublic,
    OrderPublic,
    OutletAnswer,
    OutletChoice,
    Problem,
    RegionPublic,
)
from service.csvout import dataclass_csv
from service.dispatch import Dispatcher
from service.network import Network
from service.orders import WorkOrder
from service.outlet_statements import OutletStatement, OutletStatements, StatementLine

router = APIRouter(prefix="/api/v1", tags=["outlet network"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "your role may not do this"},
    404: {"model": Problem, "description": "not in your scope"},
    409: {"model": Problem, "description": "refused as things stand; the message says why"},
    422: {"model": Problem, "description": "the request is not valid; the message says why"},
}


@router.get("/network", response_model=list[RegionPublic], responses=REFUSED)
async def network(who: Ops, db: Db) -> Any:
    """Regions → outlets (with their hours to accept a job) → technicians: all, or your
    outlets."""

    def run() -> Any:
        return [asdict(r) for r in Network(db).tree(views.outlets_of(db, who))]

    return await asyncio.to_thread(run)


@router.get("/outlet-offers", response_model=list[OfferPublic], responses=REFUSED)
async def offers(
    who: Ops,
    db: Db,
    state: Literal["offered", "accepted", "declined", "expired"] | None = "offered",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Jobs offered to your outlets, those due soonest first (waiting for an answer by
    default)."""

    def run() -> Any:
        found = Network(db).offers(outlets_=views.outlets_of(db, who), state=state, limit=limit)
        return [asdict(o) for o in found]

    return await asyncio.to_thread(run)


@router.post("/orders/{order_id}/outlet-answer", response_model=OrderPublic, responses=REFUSED)
async def answer(order_id: OrderId, body: OutletAnswer, who: Ops, db: Db) -> Any:
    """Your outlet takes the job offered to it (`accept: true`; one of its technicians is
    sent), or declines it with a reason (it goes to another outlet of the region, or
    waits for the region's ops)."""

    def run() -> WorkOrder:
        mine = views.outlets_of(db, who)
        net = Network(db)
        if body.accept:
            net.accept(order_id, by=who.user_id, outlets_=mine)
            Dispatcher(db).run([order_id])
        else:
            net.decline(order_id, by=who.user_id, reason=body.reason, outlets_=mine)
        return net.orders.get(order_id)

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/orders/{order_id}/outlet", response_model=OrderPublic, responses=REFUSED)
async def reroute(order_id: OrderId, body: OutletChoice, who: Ops, db: Db) -> Any:
    """Send an open job to another outlet (it is offered the job, or takes it at once).
    For ops without territory limits: the region's or the maker's."""
    if who.territories:
        raise HTTPException(403, "only ops without territory limits move jobs between outlets")

    def run() -> WorkOrder:
        net = Network(db)
        net.reroute(order_id, body.outlet_id, by=who.user_id, reason=body.reason)
        Dispatcher(db).run([order_id])
        return net.orders.get(order_id)

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.get(
    "/outlet-statements",
    responses={
        **REFUSED,
        200: {
            "description": "JSON rows, or CSV with format=csv",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def statements(
    who: Ops,
    db: Db,
    start: Annotated[IsoDate | None, Query(description="Default: the first of this month")] = None,
    end: Annotated[IsoDate | None, Query(description="Exclusive; default: tomorrow")] = None,
    items: Annotated[bool, Query(description="Every amount, with its job and why")] = False,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Each outlet's statement for a period: fees (payable, held, forfeit, awaiting the
    callback), warranty claims, deductions (SLA breaches, late answers, upheld
    complaints) and the net paid. As JSON or CSV."""
    a, b = _period(start, end)

    def run() -> Any:
        s = OutletStatements(db)
        mine = views.outlets_of(db, who)
        if items:
            lines = s.lines(a, b, mine)
            if format == "csv":
                return dataclass_csv(StatementLine, lines)
            return [asdict(x) for x in lines]
        rows = s.statements(a, b, mine)
        return (
            dataclass_csv(OutletStatement, rows) if format == "csv" else [asdict(r) for r in rows]
        )

    out = await asyncio.to_thread(run)
    if format == "csv":
        return PlainTextResponse(out, media_type="text/csv")
    return out
