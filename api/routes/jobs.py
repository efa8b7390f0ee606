"""A technician's jobs: the ones assigned to them, accept or decline."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import views
from api.deps import Db, Technician
from api.schemas import OrderPublic, Problem, Reason
from workorders.dispatch import Dispatcher
from workorders.lifecycle import LIVE
from workorders.orders import WorkOrders

router = APIRouter(prefix="/api/v1/jobs", tags=["technicians"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not a technician key, or not your job"},
    404: {"model": Problem, "description": "no such job of yours"},
    409: {"model": Problem, "description": "the job is not waiting for your answer"},
}


@router.get("", response_model=list[OrderPublic])
async def my_jobs(
    who: Technician, db: Db, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[OrderPublic]:
    """Your live jobs, newest first."""
    f = views.OrderFilter(states=tuple(s.value for s in LIVE))
    rows = await asyncio.to_thread(views.orders, db, who, f, limit=limit, offset=0)
    return [OrderPublic.model_validate(o) for o in rows]


@router.post("/{order_id}/accept", response_model=OrderPublic, responses=REFUSED)
async def accept(order_id: int, who: Technician, db: Db) -> OrderPublic:
    def run() -> OrderPublic:
        views.order_in_scope(db, who, order_id)
        assert who.technician_id is not None
        return OrderPublic.model_validate(Dispatcher(db).accept(order_id, who.technician_id))

    return await asyncio.to_thread(run)


@router.post("/{order_id}/decline", response_model=OrderPublic, responses=REFUSED)
async def decline(order_id: int, body: Reason, who: Technician, db: Db) -> OrderPublic:
    """Decline with a reason: the job goes back to dispatch, never to you again."""

    def run() -> OrderPublic:
        views.order_in_scope(db, who, order_id)
        assert who.technician_id is not None
        Dispatcher(db).decline(order_id, who.technician_id, body.reason)
        return OrderPublic.model_validate(WorkOrders(db).get(order_id))

    return await asyncio.to_thread(run)
