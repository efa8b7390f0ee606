"""The console's stock plan page: what every level holds of a part, its forecast by
location and week up to the peak, and the transfers and purchases to make (those due
this week with a button: the transfer is made at once, all or nothing)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console import OpsUser, form_action, page
from api.deps import Db, require_unrestricted
from service.stock import Location, Stock
from service.stock_plan import DemandRow, StockPlanner

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/stock", response_class=HTMLResponse)
async def stock_page(
    request: Request,
    who: OpsUser,
    db: Db,
    sku: str = "",
    weeks: int = 12,
    said: str = "",
    error: str = "",
) -> HTMLResponse:
    require_unrestricted(who)
    weeks = min(max(weeks, 1), 52)
    planner = StockPlanner(db, request.app.state.profiles)
    plan = await asyncio.to_thread(planner.plan, weeks=weeks)
    skus = sorted({r.sku for r in plan.demand} | {m.sku for m in plan.moves})
    chosen = sku if sku in skus else (skus[0] if skus else "")
    held = await asyncio.to_thread(Stock(db).held, None, chosen or None)
    grid: dict[str, dict[date, DemandRow]] = defaultdict(dict)
    for r in plan.demand:
        if r.sku == chosen:
            grid[r.location][r.week] = r
    week_list = sorted({r.week for r in plan.demand}) or [plan.start]
    return page(
        request,
        "stock.html",
        who,
        plan=plan,
        skus=skus,
        sku=chosen,
        weeks=weeks,
        week_list=week_list,
        grid=grid,
        held=held,
        now_moves=[m for m in plan.moves if m.release == plan.start],
        orders=await asyncio.to_thread(Stock(db).purchase_orders),
        later_moves=[m for m in plan.moves if m.release > plan.start and m.sku == chosen],
        said=said,
        error=error,
    )


@router.post("/stock/transfer")
async def make_transfer(
    who: OpsUser,
    db: Db,
    sku: Annotated[str, Form()],
    qty: Annotated[int, Form()],
    source: Annotated[str, Form()],
    destination: Annotated[str, Form()],
) -> RedirectResponse:
    require_unrestricted(who)

    def run() -> str:
        move = Stock(db).transfer(
            sku, qty, Location.parse(source), Location.parse(destination),
            actor=who.user_id, note="from the stock plan",
        )  # fmt: skip
        return f"moved {move.qty} {move.sku} from {move.from_location} to {move.to_location}"

    return await form_action(f"/console/stock?{urlencode({'sku': sku})}", run)


@router.post("/stock/order")
async def place_order(
    who: OpsUser,
    db: Db,
    sku: Annotated[str, Form()],
    qty: Annotated[int, Form()],
    destination: Annotated[str, Form()],
    expected_on: Annotated[date, Form()],
) -> RedirectResponse:
    """A purchase the plan proposes, recorded as ordered (arriving on its date)."""
    require_unrestricted(who)

    def run() -> str:
        po = Stock(db).order(
            sku, qty, Location.parse(destination), expected_on, actor=who.user_id,
        )  # fmt: skip
        return f"purchase order #{po.id}: {po.qty} {po.sku} to {po.destination} on {po.expected_on}"

    return await form_action(f"/console/stock?{urlencode({'sku': sku})}", run)
