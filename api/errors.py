"""Domain errors to HTTP, in one place: the domain never raises `HTTPException`, and no
stack trace reaches a client."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from db.errors import DatabaseUnavailable, DomainError, NotFound
from service.callbacks import NoCallbackDue
from service.diy import NotDiy, OutOfStock
from service.errors import ConcurrentChange, InvalidTransition, NotTheAssignee, SlotUnavailable
from service.network import CannotReroute, NotOffered
from service.packages import PackageRefused, SaleConflict
from service.photos import PhotosRefused
from service.stock import NotEnoughStock
from telemetry.errors import StoreUnavailable

log = logging.getLogger("fleetcare.api")
RETRY_AFTER_S = 5  # an outage's answer: when a client may ask again

STATUS: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (NotTheAssignee, 403),
    (InvalidTransition, 409),
    (ConcurrentChange, 409),
    (SlotUnavailable, 409),
    (NoCallbackDue, 409),
    (PackageRefused, 409),
    (SaleConflict, 409),
    (NotDiy, 409),
    (OutOfStock, 409),
    (NotOffered, 409),
    (PhotosRefused, 409),
    (CannotReroute, 409),
    (NotEnoughStock, 409),
    (DomainError, 422),
]


def install(app: FastAPI) -> None:
    async def domain(request: Request, exc: Exception) -> JSONResponse:
        for kind, status in STATUS:
            if isinstance(exc, kind):
                return JSONResponse({"detail": str(exc)}, status_code=status)
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error: it is logged on the server; try again later"},
            status_code=500,
        )

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(request))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # a server the engine needs is away: the client did nothing wrong and should come
        # back, which is what 503 with Retry-After says (a 500 would say "our bug")
        what = "telemetry store" if isinstance(exc, StoreUnavailable) else "service database"
        log.warning(
            "unavailable",
            extra={"kv": {"path": request.url.path, "error": str(exc).splitlines()[0][:300]}},
        )
        return JSONResponse(
            {"detail": f"the {what} is unreachable for now; try again in a few seconds"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for outage in (DatabaseUnavailable, StoreUnavailable, sa.exc.OperationalError):
        app.add_exception_handler(outage, unavailable)
    app.add_exception_handler(DomainError, domain)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)


def _allowed(request: Request) -> list[str]:
    """Every method some route serves on this path: the router names only those of the
    first route that matched the path, though GET and PATCH may be two routes."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route | APIRoute) and route.methods:
            match, _ = route.matches({**request.scope, "method": next(iter(route.methods))})
            if match is Match.FULL:
                methods |= route.methods
    return sorted(methods)
