"""The app factory: `create_app(ctx)` builds the FastAPI app from what it is given (the
database, the telemetry store), so `fleetcare api`, the demo and the tests each build
their own. The store is opened and closed with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.context import ApiContext
from api.ratelimit import TokenBuckets
from api.routes import devices, health, jobs, orders

DESCRIPTION = """FleetCare's API: device health for the consumer app, work orders for
service ops and technicians. Every `/api/v1` route needs an API key
(`Authorization: Bearer fc_…`); `fleetcare users create` issues one."""


def create_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.store.open()
        try:
            yield
        finally:
            await ctx.store.close()

    app = FastAPI(
        title="FleetCare",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.limiter = TokenBuckets(ctx.rate_per_minute)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(orders.router)
    app.include_router(jobs.router)
    return app
