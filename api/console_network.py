"""The console's outlet pages: the jobs offered to the caller's outlets, which their ops
accept or decline, and the diy filter replacements to ship. Each form posts, then comes
back to its page saying what the action did (post/redirect/get)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api import views
from api.console import OpsUser, form_action, page
from api.deps import Db, OrderId
from service.dispatch import Dispatcher
from service.diy import Diy
from service.network import Network

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/outlet-jobs", response_class=HTMLResponse)
async def offers_page(
    request: Request, who: OpsUser, db: Db, said: str = "", error: str = ""
) -> HTMLResponse:
    def run() -> tuple[list[object], dict[int, object]]:
        net = Network(db)
        found = net.offers(outlets_=views.outlets_of(db, who), state="offered", limit=200)
        return list(found), {o.order_id: net.orders.get(o.order_id) for o in found}

    offers, jobs = await asyncio.to_thread(run)
    return page(
        request, "network.html", who, title="Outlet jobs", offers=offers, jobs=jobs,
        now=datetime.now(UTC), said=error or said, error=bool(error),
    )  # fmt: skip


@router.post("/orders/{order_id}/outlet-answer")
async def answer(
    order_id: OrderId,
    who: OpsUser,
    db: Db,
    accept: Annotated[bool, Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    def run() -> str:
        net, mine = Network(db), views.outlets_of(db, who)
        if accept:
            net.accept(order_id, by=who.user_id, outlets_=mine)
            Dispatcher(db).run([order_id])
            job = net.orders.get(order_id)
            sent = (
                "it goes to Shipments (diy)"
                if job.fulfilment == "diy"
                else f"{job.technician_id} is sent"
                if job.technician_id
                else "dispatch is on it"
            )
            return f"Job #{order_id} accepted: {sent}."
        job = net.decline(order_id, by=who.user_id, reason=reason, outlets_=mine)
        if job.outlet_state == "declined":
            return f"Job #{order_id} declined: no other outlet can take it; the region decides."
        return f"Job #{order_id} declined: it went to outlet {job.outlet_id}."

    return await form_action("/console/outlet-jobs", run)


@router.get("/shipments", response_class=HTMLResponse)
async def shipments_page(
    request: Request, who: OpsUser, db: Db, said: str = "", error: str = ""
) -> HTMLResponse:
    rows = await asyncio.to_thread(views.shipments_due, db, who, 200)
    return page(
        request, "network.html", who, title="Shipments", shipments=rows,
        said=error or said, error=bool(error),
    )  # fmt: skip


@router.post("/orders/{order_id}/shipment")
async def ship(
    order_id: OrderId,
    who: OpsUser,
    db: Db,
    carrier: Annotated[str, Form(max_length=64)],
    tracking: Annotated[str, Form(max_length=64)],
) -> RedirectResponse:
    def run() -> str:
        views.order_in_scope(db, who, order_id)
        Diy(db).ship(order_id, carrier=carrier, tracking=tracking, by=who.user_id)
        return (
            f"Job #{order_id}: the filter is on its way ({carrier} {tracking}); "
            "the customer is told."
        )

    return await form_action("/console/shipments", run)
