"""The app factory: `create_app(ctx)` builds the FastAPI app from what it is given (the
database, the telemetry store), so `fleetcare api`, the demo and the tests each build
their own. The store is opened and closed with the app."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import (
    console,
    console_aftercare,
    console_network,
    console_quality,
    console_stock,
    customer_pages,
    deps,
    errors,
)
from api.authcache import CredentialCache
from api.context import ApiContext
from api.guard import MAX_BODY, Guard
from api.hotpath import HotPaths
from api.metrics import api_registry
from api.openapi import with_text_rules
from api.ratelimit import TokenBuckets
from api.routes import (
    aftercare,
    auth,
    devices,
    health,
    jobs,
    me,
    network,
    ops,
    orders,
    packages,
    photos,
    profiles,
    quality,
    stock,
)
from api.schemas import Problem
from api.single import one_value_each
from service.photos import MAX_PHOTO_BYTES
from telemetry.profile import ProfileSet, shipped

log = logging.getLogger("fleetcare.api")

DESCRIPTION = """FleetCare's API: device health for the consumer app, work orders for
service ops and technicians. Every `/api/v1` route needs an API key
(`Authorization: Bearer fc_…`; `fleetcare users create` issues one) or a token from
`POST /api/v1/auth/token` (an account's id and password)."""
LOGIN_TRIES_PER_MINUTE = 10
STATIC = Path(__file__).parent / "static"


# what any route may answer besides its own: the guard's and the credential's refusals
ANY_ROUTE: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "a malformed request (e.g. Content-Length)"},
    401: {"model": Problem, "description": "no credential, or an unknown or ended one"},
    403: {"model": Problem, "description": "your role may not do this"},
    413: {"model": Problem, "description": "the body is over the limit"},
    422: {"model": Problem, "description": "invalid input; the message says what to fix"},
    429: {"model": Problem, "description": "over the rate; see Retry-After"},
}


def create_app(ctx: ApiContext) -> FastAPI:
    async def follow_profiles(app: FastAPI) -> None:
        """A newly imported profile version reaches the health card, the charts and the
        replay within `profiles_refresh_s`, without a restart."""
        assert ctx.profiles is not None
        while True:
            await asyncio.sleep(ctx.profiles_refresh_s)
            try:
                await use_profiles(app, await asyncio.to_thread(ctx.profiles))
            except Exception:  # keep the ones in use; try again next time
                log.exception("product profiles not read")

    async def use_profiles(app: FastAPI, profiles: ProfileSet) -> None:
        if profiles.fingerprint != app.state.profiles.fingerprint:
            await ctx.store.use_types(profiles.types)
            app.state.profiles = profiles

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx.owns_store:
            await ctx.store.open()
        follower = None
        if ctx.profiles is not None:
            await use_profiles(app, await asyncio.to_thread(ctx.profiles))
            follower = asyncio.create_task(follow_profiles(app))
        if ctx.freeze_gc:
            # what startup made lives as long as the process: out of the collector's sight,
            # a full collection pauses requests for milliseconds, not ~200 ms (measured)
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
            await ctx.db.aclose()
            if ctx.owns_store:
                await ctx.store.close()

    app = FastAPI(
        title="FleetCare",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ANY_ROUTE,
        dependencies=[Depends(one_value_each)],
    )
    app.openapi = with_text_rules(app)  # type: ignore[method-assign]
    app.state.ctx = ctx
    app.state.single_query_names = {}  # api/single.py
    app.state.profiles = shipped()  # until the lifespan has read the ones in force
    app.state.limiter = TokenBuckets(ctx.rate_per_minute)
    app.state.login_limiter = TokenBuckets(LOGIN_TRIES_PER_MINUTE)
    app.state.credentials = CredentialCache(ctx.auth_cache_s)
    app.state.metrics = api_registry(ctx.db)
    errors.install(app)
    app.add_middleware(HotPaths)  # device health before the router: api/hotpath.py
    app.add_middleware(  # added last, so it runs first: api/guard.py
        Guard,
        authenticate=deps.authenticate,
        max_upload=jobs.MAX_PHOTOS * MAX_PHOTO_BYTES + MAX_BODY,
    )
    for module in (
        health,
        auth,
        me,
        devices,
        orders,
        photos,
        aftercare,
        packages,
        network,
        jobs,
        ops,
        profiles,
        quality,
        stock,
    ):
        app.include_router(module.router)
    app.include_router(console.router)
    app.include_router(console_aftercare.router)
    app.include_router(console_network.router)
    app.include_router(console_quality.router)
    app.include_router(console_stock.router)
    app.include_router(customer_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def sign_in(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/console/login", status_code=303)

    app.add_exception_handler(console.SignIn, sign_in)

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/console", status_code=303)

    return app
