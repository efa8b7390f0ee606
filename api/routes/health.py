"""Liveness and readiness for the orchestrator (no key needed), and metrics for
Prometheus: its own bearer token (`api.metrics_token`) or an ops or admin credential,
because the counts describe the whole fleet and its service."""

from __future__ import annotations

import asyncio
import hmac

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.accounts import Role
from api.context import ApiContext
from api.deps import Db, Store, authenticate
from api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (liveness)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(db: Db, store: Store) -> Response:
    """It can serve: the database answers and the telemetry store answers (readiness)."""
    checks = {}

    def ping() -> None:
        with db.engine.connect() as conn:
            conn.execute(sa.text("select 1"))

    try:
        await asyncio.to_thread(ping)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        await store.count(device_id="-")
        checks["telemetry_store"] = "ok"
    except Exception as exc:
        checks["telemetry_store"] = f"unreachable: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """This process's metrics and the service domain's gauges (api/metrics.py)."""
    ctx: ApiContext = request.app.state.ctx
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    prometheus = (
        bool(ctx.metrics_token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), ctx.metrics_token.encode())
    )
    if not prometheus:
        who = await authenticate(request)
        if who.role not in (Role.OPS, Role.ADMIN):
            raise HTTPException(403, "metrics need the metrics token, or ops or admin")
    body = await asyncio.to_thread(generate_latest, request.app.state.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
