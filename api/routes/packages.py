"""Filter packages: the plans a device can have, sales and renewals (by the customer in
the app, or an agent for them), how replacements are taken (visit or diy, preferred
times), and the shipping of diy filters. A customer sees and buys for their own
devices; ops within their territories."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from api import views
from api.accounts import Principal, Role
from api.deps import MAX_ID, Db, Ops, OrderId, role
from api.schemas import (
    OrderPublic,
    PackageChange,
    PackagePublic,
    PackageRenewal,
    PackageSale,
    PlanPublic,
    PreferredTimes,
    Problem,
    ShipmentDue,
    ShipmentIn,
)
from service.diy import Diy
from service.packages import Fulfilment, Package, Packages, Preferred

router = APIRouter(prefix="/api/v1", tags=["filter packages"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "your role may not do this"},
    404: {"model": Problem, "description": "not in your scope"},
    409: {"model": Problem, "description": "refused as things stand; the message says why"},
    422: {"model": Problem, "description": "the request is not valid; the message says why"},
}
Buyer = Annotated[Principal, Depends(role(Role.CUSTOMER, Role.OPS, Role.ADMIN))]
DeviceId = Annotated[str, Path(min_length=1, max_length=64)]
PackageId = Annotated[int, Path(ge=1, le=MAX_ID, description="The package's id")]


def public(p: Package) -> PackagePublic:
    return PackagePublic(
        id=p.id, sale_id=p.sale_id, device_id=p.device_id, customer_id=p.customer_id,
        plan_id=p.plan_id, status=p.status(datetime.now(UTC).date()),
        starts_on=p.starts_on, ends_on=p.ends_on, covers=list(p.covers),
        replacements=p.replacements, used=p.used, remaining=p.remaining,
        price_cents=p.price_cents, fulfilment=p.fulfilment.value,
        preferred=PreferredTimes(
            days=list(p.preferred.days),
            start=p.preferred.start, end=p.preferred.end,
        ),
        channel=p.channel, sold_by=p.sold_by, sold_at=p.sold_at, renews_id=p.renews_id,
        renewed_by_id=p.renewed_by_id,
    )  # fmt: skip


def _preferred(body: PreferredTimes | None) -> Preferred | None:
    return None if body is None else Preferred(tuple(body.days), body.start, body.end)


def _channel(who: Principal) -> str:
    return "app" if who.role is Role.CUSTOMER else "agent"


def _package_in_scope(db: Db, who: Principal, package_id: int) -> Package:
    p = Packages(db).get(package_id)
    views.get_device(db, who, p.device_id)  # 404 unless the device is the caller's
    return p


@router.get("/package-plans", response_model=list[PlanPublic], responses=REFUSED)
async def all_plans(who: Ops, db: Db, retired: bool = False) -> list[PlanPublic]:
    """Every plan on sale (`retired=true`: also those no longer sold)."""
    plans = await asyncio.to_thread(Packages(db).plans, retired=retired)
    return [PlanPublic.model_validate(p) for p in plans]


@router.get(
    "/devices/{device_id}/package-plans", response_model=list[PlanPublic], responses=REFUSED
)
async def device_plans(device_id: DeviceId, who: Buyer, db: Db) -> list[PlanPublic]:
    """The plans this device can have: its model's and its type's, cheapest first."""

    def run() -> list[PlanPublic]:
        views.get_device(db, who, device_id)
        return [PlanPublic.model_validate(p) for p in Packages(db).plans(device_id)]

    return await asyncio.to_thread(run)


@router.get("/devices/{device_id}/packages", response_model=list[PackagePublic], responses=REFUSED)
async def device_packages(device_id: DeviceId, who: Buyer, db: Db) -> list[PackagePublic]:
    """The device's packages, newest sale first, with what is used and left."""

    def run() -> list[PackagePublic]:
        views.get_device(db, who, device_id)
        return [public(p) for p in Packages(db).find(device_ids=[device_id])]

    return await asyncio.to_thread(run)


# A sale or renewal is kept by the seller's sale id: 201 when this request made the
# package, 200 when the same sale came before (a retry, or one of several at once)
_SALE: dict[str, Any] = {
    "response_model": PackagePublic,
    "status_code": 201,
    "responses": {**REFUSED, 200: {"model": PackagePublic, "description": "made before"}},
}


def _made(package: Package, created: bool, response: Response) -> PackagePublic:
    if not created:
        response.status_code = 200
    return public(package)


@router.post("/devices/{device_id}/packages", **_SALE)
async def sell(
    device_id: DeviceId, body: PackageSale, who: Buyer, db: Db, response: Response
) -> PackagePublic:
    """Buy a plan for the device (the customer), or sell it to them (an agent). A device
    still covered gets it from the day its cover ends. The same `sale_id` again returns
    the same package (200)."""

    def run() -> tuple[Package, bool]:
        views.get_device(db, who, device_id)
        return Packages(db).sell(
            device_id, body.plan_id, sale_id=body.sale_id, sold_by=who.user_id,
            channel=_channel(who), fulfilment=Fulfilment(body.fulfilment),
            preferred=_preferred(body.preferred),
        )  # fmt: skip

    return _made(*await asyncio.to_thread(run), response)


@router.post("/packages/{package_id}/renewal", **_SALE)
async def renew(
    package_id: PackageId, body: PackageRenewal, who: Buyer, db: Db, response: Response
) -> PackagePublic:
    """Renew: the next package for the device, from the day this one ends (the same plan
    unless another is named; visit or diy and preferred times carry over)."""

    def run() -> tuple[Package, bool]:
        _package_in_scope(db, who, package_id)
        return Packages(db).renew(
            package_id, sale_id=body.sale_id, sold_by=who.user_id, channel=_channel(who),
            plan_id=body.plan_id,
        )  # fmt: skip

    return _made(*await asyncio.to_thread(run), response)


@router.get("/packages/{package_id}", response_model=PackagePublic, responses=REFUSED)
async def get_package(package_id: PackageId, who: Buyer, db: Db) -> PackagePublic:
    return public(await asyncio.to_thread(_package_in_scope, db, who, package_id))


@router.patch("/packages/{package_id}", response_model=PackagePublic, responses=REFUSED)
async def change(package_id: PackageId, body: PackageChange, who: Buyer, db: Db) -> PackagePublic:
    """How replacements are taken: a technician's visit, or diy (the filter is shipped;
    where the plan allows it), and when visits suit."""

    def run() -> Package:
        _package_in_scope(db, who, package_id)
        return Packages(db).change(
            package_id,
            fulfilment=Fulfilment(body.fulfilment) if body.fulfilment else None,
            preferred=_preferred(body.preferred),
        )

    return public(await asyncio.to_thread(run))


@router.get("/packages", response_model=list[PackagePublic], responses=REFUSED)
async def ending(
    who: Ops,
    db: Db,
    ending_within_days: Annotated[int | None, Query(ge=0, le=3660)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PackagePublic]:
    """Packages in scope, newest sale first; `ending_within_days`: those ending by then
    (the renewal list)."""

    def run() -> list[PackagePublic]:
        before = (
            datetime.now(UTC).date() + timedelta(days=ending_within_days)
            if ending_within_days is not None
            else None
        )
        territories = list(who.territories) if who.role is Role.OPS and who.territories else None
        found = Packages(db).find(territories=territories, ending_before=before, limit=limit)
        return [public(p) for p in found]

    return await asyncio.to_thread(run)


# -- diy shipments -----------------------------------------------------------------------
@router.get("/shipments", response_model=list[ShipmentDue], responses=REFUSED)
async def shipments_due(
    who: Ops, db: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[ShipmentDue]:
    """Diy replacements to ship (open), and those shipped and not yet fitted, the most
    urgent first."""

    def run() -> list[ShipmentDue]:
        return [ShipmentDue.model_validate(r) for r in views.shipments_due(db, who, limit)]

    return await asyncio.to_thread(run)


@router.post("/orders/{order_id}/shipment", response_model=OrderPublic, responses=REFUSED)
async def ship(order_id: OrderId, body: ShipmentIn, who: Ops, db: Db) -> Any:
    """A diy replacement's filter is handed to the carrier (taken from the outlet's
    stock); the customer is told. The device's report of the new filter completes it."""

    def run() -> Any:
        views.order_in_scope(db, who, order_id)
        return Diy(db).ship(order_id, carrier=body.carrier, tracking=body.tracking, by=who.user_id)

    return OrderPublic.model_validate(await asyncio.to_thread(run))
