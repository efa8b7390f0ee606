"""Service ops' work-order queue: filter it, approve or reject the jobs the rules and
models proposed (one or many), cancel. An approved job goes straight to dispatch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import views
from api.deps import Db, Ops
from api.schemas import BulkIds, BulkResult, OrderPublic, Problem, Reason
from workorders.accounts import Principal
from workorders.db import Database
from workorders.dispatch import Dispatcher
from workorders.errors import WorkordersError
from workorders.lifecycle import Origin, State
from workorders.orders import WorkOrder, WorkOrders

router = APIRouter(prefix="/api/v1/orders", tags=["ops: work orders"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not an ops or admin key"},
    404: {"model": Problem, "description": "no such order in your scope"},
    409: {"model": Problem, "description": "the order is not in a state that allows it"},
}


@router.get("", response_model=list[OrderPublic])
async def queue(
    who: Ops,
    db: Db,
    state: Annotated[list[State] | None, Query(description="Repeat for several.")] = None,
    origin: Origin | None = None,
    problem: str | None = None,
    territory: str | None = None,
    min_priority: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[OrderPublic]:
    """The queue, newest first: e.g. `?state=proposed&origin=auto` is what to review."""
    f = views.OrderFilter(
        states=tuple(s.value for s in state or ()),
        origin=origin.value if origin else None,
        problem=problem,
        territory=territory,
        min_priority=min_priority,
    )
    rows = await asyncio.to_thread(views.orders, db, who, f, limit=limit, offset=offset)
    return [OrderPublic.model_validate(o) for o in rows]


def _approve(db: Database, who: Principal, order_id: int) -> WorkOrder:
    views.order_in_scope(db, who, order_id)
    now = datetime.now(UTC)
    WorkOrders(db).transition(
        order_id, State.OPEN, actor=who.user_id, expect=State.PROPOSED, now=now
    )
    Dispatcher(db).run([order_id], now=now)
    return WorkOrders(db).get(order_id)


def _reject(db: Database, who: Principal, order_id: int, reason: str) -> WorkOrder:
    views.order_in_scope(db, who, order_id)
    return WorkOrders(db).transition(
        order_id, State.REJECTED, actor=who.user_id, reason=reason, expect=State.PROPOSED
    )


def _cancel(db: Database, who: Principal, order_id: int, reason: str) -> WorkOrder:
    views.order_in_scope(db, who, order_id)
    return WorkOrders(db).transition(order_id, State.CANCELLED, actor=who.user_id, reason=reason)


@router.post("/bulk/approve", response_model=BulkResult, responses=REFUSED)
async def bulk_approve(body: BulkIds, who: Ops, db: Db) -> BulkResult:
    """Approve several proposed jobs; each that cannot be says why, the rest go on."""

    def run() -> BulkResult:
        done, refused = [], {}
        for order_id in dict.fromkeys(body.ids):
            try:
                done.append(OrderPublic.model_validate(_approve(db, who, order_id)))
            except WorkordersError as exc:
                refused[order_id] = str(exc)
        return BulkResult(done=done, refused=refused)

    return await asyncio.to_thread(run)


@router.post("/{order_id}/approve", response_model=OrderPublic, responses=REFUSED)
async def approve(order_id: int, who: Ops, db: Db) -> OrderPublic:
    """Approve a proposed job: it opens and is dispatched to the best technician."""
    return OrderPublic.model_validate(await asyncio.to_thread(_approve, db, who, order_id))


@router.post("/{order_id}/reject", response_model=OrderPublic, responses=REFUSED)
async def reject(order_id: int, body: Reason, who: Ops, db: Db) -> OrderPublic:
    """Reject a proposed job, with the reason (kept in its history)."""
    found = await asyncio.to_thread(_reject, db, who, order_id, body.reason)
    return OrderPublic.model_validate(found)


@router.post("/{order_id}/cancel", response_model=OrderPublic, responses=REFUSED)
async def cancel(order_id: int, body: Reason, who: Ops, db: Db) -> OrderPublic:
    """Cancel a live order, with the reason."""
    found = await asyncio.to_thread(_cancel, db, who, order_id, body.reason)
    return OrderPublic.model_validate(found)
