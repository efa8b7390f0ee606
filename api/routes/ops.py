"""What service ops watch besides the queue: alerts and their silences, KPIs, the parts
demand forecast, dead letters (list, replay), and the status of rules and models.

Ops limited to territories see the alerts and KPIs of their territories; dead letters
and replay are fleet-wide, so they need unrestricted ops or admin."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import available_timezones

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from api import views
from api.accounts import Principal
from api.context import ApiContext
from api.deps import MAX_ID, Db, Ops, Store, context, require_unrestricted
from api.schemas import (
    AlertPublic,
    DeadLetterPublic,
    IsoDate,
    Problem,
    ReplayIds,
    ReplayResult,
    SilenceIn,
    SilencePublic,
)
from db.database import Database
from db.tables import alerts, device_sites, model_scores
from fleet.state import DeviceStateRepository
from ingest.dead_letters import PENDING, DeadLetter, DeadLetterRepository
from ingest.replay import replay
from rules.alerts import Alert, AlertStore
from service.kpis import GroupBy, Period, kpis
from service.parts_forecast import DemandRow, forecast

router = APIRouter(prefix="/api/v1", tags=["ops"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not an ops or admin key"},
    404: {"model": Problem, "description": "not found"},
}


# -- alerts and silences ----------------------------------------------------------------
def _alerts(
    db: Database,
    who: Principal,
    state: str | None,
    device: str | None,
    rule: str | None,
    limit: int,
) -> list[Alert]:
    q = sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    for col, value in (
        (alerts.c.state, state),
        (alerts.c.device_id, device),
        (alerts.c.rule_id, rule),
    ):
        if value is not None:
            q = q.where(col == value)
    if who.territories:
        q = q.where(
            alerts.c.device_id.in_(
                sa.select(device_sites.c.device_id).where(
                    device_sites.c.territory_id.in_(who.territories)
                )
            )
        )
    with db.engine.connect() as conn:
        return [Alert.from_row(r) for r in conn.execute(q)]


@router.get("/alerts", response_model=list[AlertPublic], responses=REFUSED)
async def list_alerts(
    who: Ops,
    db: Db,
    state: Annotated[str | None, Query(description="pending, firing or resolved")] = "firing",
    device: str | None = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertPublic]:
    """Alerts, newest first (firing by default; `state=` for others)."""
    rows = await asyncio.to_thread(_alerts, db, who, state or None, device, rule, limit)
    return [AlertPublic.model_validate(a) for a in rows]


@router.get("/silences", response_model=list[SilencePublic], responses=REFUSED)
async def list_silences(who: Ops, db: Db, expired: bool = False) -> list[SilencePublic]:
    """Every silence (fleet-wide: their comments name customers and devices anywhere)."""
    require_unrestricted(who)
    rows = await asyncio.to_thread(AlertStore(db).list_silences, include_expired=expired)
    return [SilencePublic.model_validate(s) for s in rows]


@router.post(
    "/silences",
    response_model=SilencePublic,
    status_code=201,
    responses={**REFUSED, 422: {"model": Problem}},
)
async def add_silence(body: SilenceIn, who: Ops, db: Db) -> SilencePublic:
    """Mute matching alerts (by rule, device or customer) until `ends_at`, saying why.
    Silenced alerts still fire and are kept; they open no job and send no message."""
    require_unrestricted(who)
    made = await asyncio.to_thread(
        AlertStore(db).add_silence,
        ends_at=body.ends_at,
        starts_at=body.starts_at,
        created_by=who.user_id,
        comment=body.comment,
        rule_id=body.rule_id,
        device_id=body.device_id,
        customer_id=body.customer_id,
    )
    return SilencePublic.model_validate(made)


@router.delete("/silences/{silence_id}", status_code=204, responses=REFUSED)
async def expire_silence(
    silence_id: Annotated[int, Path(ge=1, le=MAX_ID)], who: Ops, db: Db
) -> None:
    """End a silence now."""
    require_unrestricted(who)
    await asyncio.to_thread(AlertStore(db).expire_silence, silence_id)


# -- KPIs and parts ---------------------------------------------------------------------
ZONES = sorted(available_timezones())  # the IANA names this machine knows
# the range is cut to these: no job before, and periods and zones stay in range
EARLIEST, LATEST = date(1970, 1, 1), date(2200, 1, 1)


@router.get("/kpis", responses=REFUSED)
async def get_kpis(
    who: Ops,
    db: Db,
    start: Annotated[IsoDate | None, Query(description="Default: 12 weeks ago")] = None,
    end: Annotated[IsoDate | None, Query(description="Exclusive; default: tomorrow")] = None,
    by: GroupBy = GroupBy.OUTLET,
    period: Period = Period.WEEK,
    timezone: Annotated[
        str,
        Query(
            description="An IANA zone: periods start at local midnight",
            json_schema_extra={"enum": ZONES},
        ),
    ] = "UTC",
) -> list[dict[str, Any]]:
    """First-time fix, dispatch first-time, parts fill rate, SLA compliance, times to
    dispatch and complete, rating and NPS, complaints, resolved online; per group and
    period. Ops limited to territories see their territories."""
    today = datetime.now(UTC).date()
    end = end or today + timedelta(days=1)
    start = start or end - timedelta(weeks=12)
    start, end = max(start, EARLIEST), min(end, LATEST)  # nothing happened outside
    if start >= end:  # an empty range has no periods
        return []
    if who.territories:
        by = GroupBy.TERRITORY
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(timezone)
    except (KeyError, ValueError):
        raise HTTPException(
            422, f"timezone {timezone!r}: give an IANA name, e.g. Asia/Shanghai"
        ) from None
    rows = await asyncio.to_thread(
        kpis,
        db,
        datetime.combine(start, datetime.min.time(), tzinfo=UTC),
        datetime.combine(end, datetime.min.time(), tzinfo=UTC),
        by=by,
        period=period,
        timezone=timezone,
    )
    return [asdict(r) for r in rows if not who.territories or r.group in who.territories]


@router.get("/parts-forecast", responses=REFUSED)
async def parts_forecast(
    who: Ops,
    db: Db,
    weeks: Annotated[int, Query(ge=1, le=26)] = 8,
    by_territory: bool = False,
) -> list[dict[str, Any]]:
    """Parts each outlet will need per week: from live orders and from predicted filter
    exhaustion, against what is on hand, with the shortfall."""

    def run() -> list[DemandRow]:
        rows = forecast(db, weeks=weeks, by_territory=by_territory)
        return views.parts_in_scope(db, who, rows)

    return [asdict(r) for r in await asyncio.to_thread(run)]


# -- dead letters ------------------------------------------------------------------------
def _public(d: DeadLetter) -> DeadLetterPublic:
    return DeadLetterPublic(
        id=d.id,
        topic=d.topic,
        reason=d.reason,
        detail=d.detail,
        device_id=d.device_id,
        status=d.status,
        first_seen_at=d.first_seen_at,
        last_seen_at=d.last_seen_at,
        count=d.count,
        payload_preview=d.payload[:500].decode("utf-8", "replace"),
    )


@router.get("/dead-letters", response_model=list[DeadLetterPublic], responses=REFUSED)
async def dead_letters(
    who: Ops,
    db: Db,
    status: Annotated[
        str | None, Query(description="pending (default), replayed, discarded; empty for all")
    ] = PENDING,
    reason: str | None = None,
    device: str | None = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID, description="Page on: the last id seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterPublic]:
    """Messages ingest refused, with the reason, oldest first."""
    require_unrestricted(who)
    rows = await asyncio.to_thread(
        DeadLetterRepository(db).list,
        status=status or None,
        reason=reason,
        device_id=device,
        limit=limit,
        after_id=after_id,
    )
    return [_public(d) for d in rows]


@router.post("/dead-letters/replay", response_model=ReplayResult, responses=REFUSED)
async def replay_dead_letters(
    request: Request,
    body: ReplayIds,
    who: Ops,
    db: Db,
    store: Store,
    ctx: Annotated[ApiContext, Depends(context)],
) -> ReplayResult:
    """Decode these dead letters again (after a fix: a device registered, a contract
    widened) and store the ones that now pass; the others stay, with the new reason."""
    require_unrestricted(who)
    repo = DeadLetterRepository(db)
    letters = await asyncio.to_thread(repo.list, status=PENDING, ids=body.ids, limit=len(body.ids))
    report = await replay(
        letters,
        decoder=ctx.decoder.with_profiles(request.app.state.profiles),
        store=store,
        dead_letters=repo,
        state=DeviceStateRepository(db),
    )
    return ReplayResult(
        stored=report.stored,
        still_rejected={i: f"{why}: {detail}" for i, why, detail in report.still_rejected},
    )


# -- rules and models --------------------------------------------------------------------
@router.get("/status", responses=REFUSED)
async def status(who: Ops, db: Db, ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    """Each rule (source, enabled, alerts firing, last fired), rule-file errors, and each
    model's active version with its metrics and how many devices it scored."""

    def run() -> dict[str, Any]:
        with db.engine.connect() as conn:
            firing: dict[str, int] = dict(
                conn.execute(
                    sa.select(alerts.c.rule_id, sa.func.count())
                    .where(alerts.c.state == "firing")
                    .group_by(alerts.c.rule_id)
                ).all()
            )
            last = dict(
                conn.execute(
                    sa.select(alerts.c.rule_id, sa.func.max(alerts.c.fired_at)).group_by(
                        alerts.c.rule_id
                    )
                ).all()
            )
            scored = {
                r.model: {"devices": r.devices, "updated_at": r.updated_at}
                for r in conn.execute(
                    sa.select(
                        model_scores.c.model,
                        sa.func.count(sa.distinct(model_scores.c.device_id)).label("devices"),
                        sa.func.max(model_scores.c.updated_at).label("updated_at"),
                    ).group_by(model_scores.c.model)
                )
            }
        rules = [
            {
                "id": r.id,
                "device_type": r.device_type,
                "title": r.title,
                "severity": r.severity,
                "source": ctx.catalog.sources.get(r.id, ""),
                "enabled": r.enabled,
                "firing": firing.get(r.id, 0),
                "last_fired_at": last.get(r.id),
            }
            for r in ctx.catalog.rules.values()
        ]
        models = []
        if ctx.models is not None:
            for name in ctx.models.names():
                v = ctx.models.active(name)
                models.append(
                    {
                        "name": name,
                        "active_version": v.version if v else None,
                        "trained_at": v.created_at if v else None,
                        "data": [v.data_start, v.data_end] if v else None,
                        "metrics": v.metrics if v else {},
                    }
                )
        return {
            "rules": rules,
            "rule_errors": [str(e) for e in ctx.catalog.errors],
            "models": models,
            "scores": scored,
        }

    return await asyncio.to_thread(run)
