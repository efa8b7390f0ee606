"""The signed-in customer's own settings (how to reach them, and when not to), and
their requests to install a unit they bought."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from fastapi import APIRouter, Response

from api.accounts import Principal
from api.deps import Caller, Customer, Db
from api.schemas import OrderPublic, PreferencesChange, PreferencesPublic, Problem, ShopReceived
from service.orders import WorkOrders
from service.self_service import SelfService
from service.shop_orders import InstallationRequest, Received, ShopOrders

router = APIRouter(prefix="/api/v1/me", tags=["customers"])


@router.get("")
async def whoami(who: Caller) -> dict[str, object]:
    """Who the key or token belongs to, and its scope."""
    return {
        "user_id": who.user_id,
        "name": who.name,
        "role": who.role.value,
        "customer_id": who.customer_id,
        "technician_id": who.technician_id,
        "territories": list(who.territories),
    }


@router.get("/preferences", response_model=PreferencesPublic, responses={403: {"model": Problem}})
async def preferences(who: Customer, db: Db) -> PreferencesPublic:
    prefs = await asyncio.to_thread(SelfService(db).preferences, _customer(who))
    return PreferencesPublic(**asdict(prefs))


@router.patch(
    "/preferences",
    response_model=PreferencesPublic,
    responses={403: {"model": Problem}, 422: {"model": Problem}},
)
async def change_preferences(body: PreferencesChange, who: Customer, db: Db) -> PreferencesPublic:
    """Change the channel (app, sms, phone), quiet hours (no message or visit then,
    local time) or whether the monthly air report is sent; what is not given stays."""
    prefs = await asyncio.to_thread(
        SelfService(db).update,
        _customer(who),
        channel=body.channel,
        quiet_hours=body.quiet_hours,
        clear_quiet_hours=body.clear_quiet_hours,
        air_reports=body.air_reports,
    )
    return PreferencesPublic(**asdict(prefs))


@router.post(
    "/installations",
    response_model=ShopReceived,
    status_code=201,
    responses={
        200: {"model": ShopReceived, "description": "requested before"},
        403: {"model": Problem},
        422: {"model": Problem},
    },
)
async def request_installation(
    body: InstallationRequest, who: Customer, db: Db, response: Response
) -> ShopReceived:
    """Ask for a unit you bought to be installed: it is registered to you (model, serial,
    purchase date: its warranty starts there) at your address on record (or the one
    given), and the installation job opens at once. The same `request_id` again is the
    same job (200)."""

    def run() -> Received:
        return ShopOrders(WorkOrders(db)).request_installation(_customer(who), body)

    got = await asyncio.to_thread(run)
    response.status_code = 201 if got.created else 200
    response.headers["Location"] = f"/api/v1/orders/{got.order.id}"
    return ShopReceived(
        created=got.created, order=OrderPublic.model_validate(got.order),
        device_id=got.device_id, customer_id=got.customer_id,
    )  # fmt: skip


def _customer(who: Principal) -> str:
    assert who.customer_id is not None  # a customer account always has one
    return who.customer_id
