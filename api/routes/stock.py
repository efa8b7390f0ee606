"""Parts stock at every level and the plan for a sales peak (`service.stock`,
`service.stock_plan`): what each location holds, transfers, receipts and counts, the
sales plan, and the forecast with its transfers and purchases. The network is the
maker's, so ops without territory limits or admin."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Db, Ops, require_unrestricted
from api.routes.ops import REFUSED
from api.routes.quality import CSV_OR_JSON
from api.schemas import IsoDate, Problem
from service.csvout import dataclass_csv
from service.stock import Held, Location, Move, Stock
from service.stock_plan import (
    PlannedMove,
    SalesPlan,
    SalesPlanRefused,
    SalesPlanRow,
    StockPlanner,
    parse_sales_plan_csv,
)

router = APIRouter(prefix="/api/v1", tags=["stock"])
CONFLICT: dict[int | str, dict[str, Any]] = {
    **REFUSED,
    409: {"model": Problem, "description": "the source holds less than asked for"},
}
LOCATION = r"^(central|distribution|outlet|van):[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Where = Annotated[str, Field(pattern=LOCATION, max_length=80, examples=["outlet:o-1"])]
Sku = Annotated[str, Field(min_length=1, max_length=64, examples=["AP-HEPA-01"])]
Note = Annotated[str | None, Field(default=None, max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransferIn(_Body):
    sku: Sku
    qty: int = Field(ge=1, le=1_000_000)
    source: Where = Field(description="level:id, e.g. central:cn, distribution:east")
    destination: Where = Field(description="level:id, e.g. outlet:o-1, van:tech-1")
    note: Note = None


class ReceiptIn(_Body):
    sku: Sku
    qty: int = Field(ge=1, le=1_000_000)
    location: Where
    order_id: int | None = Field(
        default=None, ge=1, description="The purchase order it delivers (closed when full)"
    )
    note: Note = None


class PurchaseOrderIn(_Body):
    sku: Sku
    qty: int = Field(ge=1, le=1_000_000)
    location: Where = Field(description="Where it will arrive, usually central:…")
    expected_on: IsoDate
    reference: str | None = Field(default=None, max_length=64, description="e.g. the PO number")


class CountIn(_Body):
    sku: Sku
    counted: int = Field(ge=0, le=1_000_000)
    location: Where
    note: Note = None


def _held(h: Held) -> dict[str, Any]:
    return {
        "location": str(h.location),
        "level": h.location.level.value,
        "sku": h.sku,
        "qty": h.qty,
    }


@router.get("/stock", responses=REFUSED)
async def held(
    who: Ops,
    db: Db,
    location: Annotated[
        str | None, Query(pattern=LOCATION, max_length=80, description="level:id")
    ] = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    """What each location holds, every level (central, distribution, outlet, van)."""
    require_unrestricted(who)
    at = Location.parse(location) if location else None
    return [_held(h) for h in await asyncio.to_thread(Stock(db).held, at, sku)]


@router.get("/stock/moves", responses=REFUSED)
async def moves(
    who: Ops,
    db: Db,
    sku: Annotated[str | None, Query(max_length=64)] = None,
    location: Annotated[str | None, Query(pattern=LOCATION, max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict[str, Any]]:
    """The ledger of transfers, receipts and counts, newest first."""
    require_unrestricted(who)
    at = Location.parse(location) if location else None
    found = await asyncio.to_thread(lambda: Stock(db).moves(sku=sku, location=at, limit=limit))
    return [asdict(m) for m in found]


def _move(m: Move) -> dict[str, Any]:
    return asdict(m)


@router.post("/stock/transfers", status_code=201, responses=CONFLICT)
async def transfer(body: TransferIn, who: Ops, db: Db) -> dict[str, Any]:
    """Move stock between two locations, all or nothing: more than the source holds is a
    409 saying what it holds (never below zero, however many move it at once)."""
    require_unrestricted(who)
    src, dst = Location.parse(body.source), Location.parse(body.destination)
    return _move(
        await asyncio.to_thread(
            lambda: Stock(db).transfer(
                body.sku, body.qty, src, dst, actor=who.user_id, note=body.note
            )
        )
    )


@router.post("/stock/receipts", status_code=201, responses=REFUSED)
async def receive(body: ReceiptIn, who: Ops, db: Db) -> dict[str, Any]:
    """Stock arriving from a supplier or the factory."""
    require_unrestricted(who)
    at = Location.parse(body.location)
    return _move(
        await asyncio.to_thread(
            lambda: Stock(db).receive(
                body.sku, body.qty, at, actor=who.user_id, note=body.note, order_id=body.order_id
            )
        )
    )


@router.post("/stock/purchase-orders", status_code=201, responses=REFUSED)
async def order(body: PurchaseOrderIn, who: Ops, db: Db) -> dict[str, Any]:
    """Record a purchase from a supplier: the stock plan counts it as arriving on
    `expected_on` until it is received (`POST /stock/receipts` with its `order_id`)."""
    require_unrestricted(who)
    at = Location.parse(body.location)
    po = await asyncio.to_thread(
        lambda: Stock(db).order(
            body.sku, body.qty, at, body.expected_on, actor=who.user_id, reference=body.reference
        )
    )
    return {**asdict(po), "due": po.due}


@router.get("/stock/purchase-orders", responses=REFUSED)
async def purchase_orders(who: Ops, db: Db, all: bool = False) -> list[dict[str, Any]]:
    """Purchase orders still to arrive (with `all=true`, received and cancelled too)."""
    require_unrestricted(who)
    found = await asyncio.to_thread(lambda: Stock(db).purchase_orders(open_only=not all))
    return [{**asdict(p), "due": p.due} for p in found]


@router.post("/stock/counts", status_code=201, responses=REFUSED)
async def count(body: CountIn, who: Ops, db: Db) -> dict[str, Any]:
    """A physical count: the location holds `counted` from now; the ledger keeps the
    difference (negative: missing)."""
    require_unrestricted(who)
    at = Location.parse(body.location)
    return _move(
        await asyncio.to_thread(
            lambda: Stock(db).count(body.sku, body.counted, at, actor=who.user_id, note=body.note)
        )
    )


@router.get("/sales-plan", responses=CSV_OR_JSON)
async def get_sales_plan(
    request: Request,
    who: Ops,
    db: Db,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Expected units by region, model and week (its Monday)."""
    require_unrestricted(who)
    rows = await asyncio.to_thread(SalesPlan(db, request.app.state.profiles).rows, start, end)
    if format == "csv":
        text = "region_id,model,week,units\n" + "".join(
            f"{r.region_id},{r.model},{r.week.isoformat()},{r.units}\n" for r in rows
        )
        return PlainTextResponse(text, media_type="text/csv")
    return [r.model_dump(mode="json") for r in rows]


@router.put(
    "/sales-plan",
    responses=REFUSED,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": SalesPlanRow.model_json_schema()}
                },
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def put_sales_plan(request: Request, who: Ops, db: Db) -> dict[str, Any]:
    """Set the weeks given (JSON list of rows, or CSV `region_id,model,week,units`); weeks
    not given stay. All or nothing: every bad row is named in the 422."""
    require_unrestricted(who)
    raw = await request.body()
    if "csv" in request.headers.get("content-type", ""):
        rows = parse_sales_plan_csv(raw.decode("utf-8", errors="replace"))
    else:
        import json

        from pydantic import TypeAdapter, ValidationError

        try:
            rows = TypeAdapter(list[SalesPlanRow]).validate_python(json.loads(raw or b"null"))
        except ValidationError as exc:
            raise SalesPlanRefused(
                [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
            ) from None
        except ValueError:
            raise SalesPlanRefused(
                ["the body is not JSON: send a list of rows, or text/csv"]
            ) from None
    saved = await asyncio.to_thread(SalesPlan(db, request.app.state.profiles).save, rows)
    return {"saved": saved}


def _where(loc: tuple[int | str, ...]) -> str:
    """A validation error's place in a JSON list of rows, as a person counts them."""
    if loc and isinstance(loc[0], int):
        return f"row {loc[0] + 1}" + (f", {'.'.join(map(str, loc[1:]))}" if loc[1:] else "")
    return "the body"


@router.get("/stock-plan", responses=CSV_OR_JSON)
async def stock_plan(
    request: Request,
    who: Ops,
    db: Db,
    weeks: Annotated[int, Query(ge=1, le=52)] = 12,
    show: Literal["all", "demand", "moves"] = "all",
    format: Literal["json", "csv"] = "json",
) -> Any:
    """The forecast by location × SKU × week (jobs and predicted exhaustions, the
    installed base's failures, the sales plan's new units, the orders of the locations
    it supplies; projected stock and safety stock) and the transfers and purchases that
    keep every level stocked, each with when to ship and when it arrives; `late` when it
    cannot arrive before the shortfall. CSV with `show=demand` or `show=moves`."""
    require_unrestricted(who)
    plan = await asyncio.to_thread(StockPlanner(db, request.app.state.profiles).plan, weeks=weeks)
    if format == "csv":
        if show == "moves":
            return PlainTextResponse(dataclass_csv(PlannedMove, plan.moves), media_type="text/csv")
        return PlainTextResponse(plan.csv(), media_type="text/csv")
    out: dict[str, Any] = {
        "start": plan.start.isoformat(),
        "weeks": plan.weeks,
        "unsupplied": plan.unsupplied,
    }
    if show in ("all", "demand"):
        out["demand"] = [asdict(r) for r in plan.demand]
    if show in ("all", "moves"):
        out["moves"] = [asdict(m) for m in plan.moves]
    return out
