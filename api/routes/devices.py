"""Devices as the consumer app and ops see them: the list in the caller's scope (ops can
search it), one device's health, its telemetry history, and "I replaced the filter
myself"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api import views
from api.deps import MAX_ID, SECURITY, Caller, Customer, Db, Store, authenticate
from api.schemas import (
    AirReportPublic,
    DeviceHealth,
    DevicePublic,
    IsoDateTime,
    Problem,
    ProblemChoice,
    Sample,
    SelfReplacedPublic,
    Series,
    TelemetryHistory,
)
from service.air_report import AirReports, parse_month
from service.intake import Intake
from service.orders import WorkOrders
from service.self_service import SelfService
from telemetry.metrics import MetricKind
from telemetry.profile import ProfileSet
from telemetry.records import Aggregation, RangeQuery

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such device in your scope"}
}
MAX_POINTS = 2000
NUMERIC = (MetricKind.FLOAT, MetricKind.INT)


@router.get("", response_model=list[DevicePublic])
async def list_devices(
    who: Caller,
    db: Db,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Search: the start of a device id, serial, customer id or the "
            "customer's phone number, or part of the address",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[DevicePublic]:
    """The devices you may see: a customer's own, a technician's assigned, ops' region."""
    rows = await asyncio.to_thread(
        views.list_devices, db, who, limit=limit, offset=offset, search=q
    )
    return [DevicePublic.model_validate(r) for r in rows]


@router.get(
    "/{device_id}/health",
    response_model=DeviceHealth,
    responses={**NOT_FOUND, 401: {"model": Problem}, 429: {"model": Problem}},
    openapi_extra={"security": SECURITY},
)
async def device_health(device_id: str, request: Request) -> Response:
    """Online and last seen, latest readings with units, each filter stage's condition
    (OK / Warning / Critical) with its predicted exhaustion and band, active problems,
    and the open job."""
    return await health_response(request, device_id)


async def health_response(request: Request, device_id: str) -> Response:
    """Device health, for the route and for `api.hotpath`, which answers it before the
    router. The consumer app asks for this more than for anything else, so it skips
    FastAPI's dependency resolution and response encoding: `authenticate` is `Caller` as
    a call, and pydantic-core validates and writes the JSON in one pass."""
    who = await authenticate(request)
    found = await views.ahealth(
        request.app.state.ctx.db,
        who,
        device_id,
        datetime.now(UTC),
        request.app.state.profiles,
        request.headers.get("accept-language"),
    )
    body = DeviceHealth.model_validate(found).model_dump_json()
    return Response(body, media_type="application/json")


@router.get(
    "/{device_id}/problems",
    response_model=list[ProblemChoice],
    responses={**NOT_FOUND, 401: {"model": Problem}},
)
async def problems(device_id: str, request: Request, who: Caller, db: Db) -> list[ProblemChoice]:
    """What may be reported on this device (`POST /api/v1/orders`): the problems its
    product profile names, a visit to look at it (`inspection`) and `advice`."""

    def run() -> dict[str, str]:
        device = views.get_device(db, who, device_id)
        return Intake(WorkOrders(db), request.app.state.profiles).problems_for(device.device_type)

    found = await asyncio.to_thread(run)
    return [ProblemChoice(kind=k, title=t) for k, t in found.items()]


@router.get(
    "/{device_id}/telemetry",
    response_model=TelemetryHistory,
    responses={**NOT_FOUND, 422: {"model": Problem}},
)
async def telemetry(
    device_id: str,
    request: Request,
    who: Caller,
    db: Db,
    store: Store,
    metric: Annotated[
        list[str] | None,
        Query(description="Repeat for several; default: the device type's main readings"),
    ] = None,
    start: Annotated[IsoDateTime | None, Query(description="Default: a week before `end`")] = None,
    end: Annotated[IsoDateTime | None, Query(description="Default: now")] = None,
    points: Annotated[
        int, Query(ge=10, le=MAX_POINTS, description="At most this many points per series")
    ] = 300,
    aggregation: Aggregation = Aggregation.MEAN,
) -> TelemetryHistory:
    """A device's readings over time, downsampled: the range is cut into at most
    `points` equal buckets and each is summarised (`mean`, `min`, `max` or `last`)."""
    device = await asyncio.to_thread(views.get_device, db, who, device_id)
    profile = profiles_of(request).profile(device.device_type)
    table = profile.device_type
    names = metric or list(profile.chart_metrics())
    for name in names:
        m = table.by_name.get(name)
        if m is None or m.kind not in NUMERIC:  # a series this device does not have
            known = ", ".join(x.name for x in table.metrics if x.kind in NUMERIC)
            raise HTTPException(
                404, f"metric {name!r}: a {device.device_type} has the numeric metrics {known}"
            )
    end = _utc(end) if end else datetime.now(UTC)
    start = _utc(start) if start else end - timedelta(days=7)
    if start >= end:  # an empty range has no readings
        return TelemetryHistory(device_id=device_id, start=start, end=end, series=[])
    span_ms = int((end - start).total_seconds() * 1000)
    every_ms = max(1000, -(-span_ms // points))  # ceil: never more than `points`
    frame = await store.query(
        RangeQuery(
            device_type=device.device_type,
            device_id=device_id,
            metrics=tuple(names),
            start=int(start.timestamp() * 1000),
            end=int(end.timestamp() * 1000),
            every_ms=every_ms,
            aggregation=aggregation,
        )
    )
    stamps = [datetime.fromtimestamp(t / 1000, UTC) for t in frame.ts]
    return TelemetryHistory(
        device_id=device_id,
        start=start,
        end=end,
        series=[
            Series(
                metric=name,
                unit=table.by_name[name].unit,
                aggregation=aggregation.value,
                every_s=every_ms // 1000,
                points=[
                    Sample(ts=ts, value=None if v is None else float(v))
                    for ts, v in zip(stamps, frame.columns.get(name, []), strict=False)
                ],
            )
            for name in names
        ],
    )


@router.get(
    "/{device_id}/air-report",
    response_model=AirReportPublic,
    responses={**NOT_FOUND, 422: {"model": Problem}},
)
async def air_report(
    device_id: str,
    request: Request,
    who: Caller,
    db: Db,
    store: Store,
    month: Annotated[
        str | None,
        Query(
            pattern=r"^\d{4}-\d{2}$",
            description="YYYY-MM, a month that is over in the customer's time zone "
            "(default: the last one)",
        ),
    ] = None,
) -> AirReportPublic:
    """The household's monthly air report (docs/air-report.md): each air metric the
    appliance reports by hour of day and by day, the hours and days outside the
    guideline, the filter's effect, the neighbourhood's percentiles (only from 10
    households or more) and advice, in the customer's time zone and language."""
    await asyncio.to_thread(views.get_device, db, who, device_id)  # in the caller's scope
    reports = AirReports(db, store, profiles_of(request))
    found = await reports.report(
        device_id,
        parse_month(month) if month else None,
        language=request.headers.get("accept-language"),  # else the customer's own
    )
    return AirReportPublic.model_validate(found)


@router.post(
    "/{device_id}/filters/{stage}/replaced",
    response_model=SelfReplacedPublic,
    responses={**NOT_FOUND, 403: {"model": Problem}, 422: {"model": Problem}},
)
async def replaced_myself(
    device_id: str, stage: str, request: Request, who: Customer, db: Db
) -> SelfReplacedPublic:
    """ "I replaced the filter myself": that stage's wear restarts (the device is told to
    reset its counter), its old prediction is dropped, and a pending job to replace it is
    cancelled; a diy package's job whose filter was shipped is completed instead."""

    def run() -> SelfReplacedPublic:
        device = views.get_device(db, who, device_id)
        profile = profiles_of(request).profile(device.device_type)
        assert who.customer_id is not None
        done = SelfService(db).replaced_filter(
            device_id,
            stage,
            stages=tuple(c.stage for c in profile.doc.consumables),
            customer_id=who.customer_id,
        )
        return SelfReplacedPublic(
            device_id=done.device_id,
            stage=done.stage,
            at=done.at,
            cancelled_order=done.cancelled_order,
        )

    return await asyncio.to_thread(run)


def profiles_of(request: Request) -> ProfileSet:
    """The product profiles in force, as the app last read them."""
    profiles: ProfileSet = request.app.state.profiles
    return profiles


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise HTTPException(422, f"{moment.isoformat()}: give the time with its offset, e.g. Z")
    return moment.astimezone(UTC)
