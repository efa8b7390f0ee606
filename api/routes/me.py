"""The signed-in customer's own settings: how to reach them, and when not to."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from fastapi import APIRouter

from api.accounts import Principal
from api.deps import Caller, Customer, Db
from api.schemas import PreferencesChange, PreferencesPublic, Problem
from service.self_service import SelfService

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
    """Change the channel (app, sms, phone) or quiet hours (no message or visit then,
    local time); what is not given stays."""
    prefs = await asyncio.to_thread(
        SelfService(db).update,
        _customer(who),
        channel=body.channel,
        quiet_hours=body.quiet_hours,
        clear_quiet_hours=body.clear_quiet_hours,
    )
    return PreferencesPublic(**asdict(prefs))


def _customer(who: Principal) -> str:
    assert who.customer_id is not None  # a customer account always has one
    return who.customer_id
