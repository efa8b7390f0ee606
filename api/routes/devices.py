"""Devices as the consumer app and ops see them: the list in the caller's scope, and
one device's health."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import views
from api.deps import Caller, Db
from api.schemas import DeviceHealth, DevicePublic, Problem

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such device in your scope"}
}


@router.get("", response_model=list[DevicePublic])
async def list_devices(
    who: Caller,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DevicePublic]:
    """The devices you may see: a customer's own, a technician's assigned, ops' region."""
    rows = await asyncio.to_thread(views.list_devices, db, who, limit=limit, offset=offset)
    return [DevicePublic.model_validate(r) for r in rows]


@router.get("/{device_id}/health", response_model=DeviceHealth, responses=NOT_FOUND)
async def device_health(device_id: str, who: Caller, db: Db) -> DeviceHealth:
    """Online and last seen, latest readings with units, each filter stage's condition
    (OK / Warning / Critical) with its predicted exhaustion and band, active problems,
    and the open job."""
    found = await asyncio.to_thread(views.health, db, who, device_id, datetime.now(UTC))
    return DeviceHealth.model_validate(found)
