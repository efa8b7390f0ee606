"""Dependencies the routes declare, so their signatures read like what they need:
`who: Caller`, `db: Db`. Authentication is a bearer key (`Authorization: Bearer fc_…`)
or the `X-API-Key` header: missing or unknown is 401, a role that may not call the route
is 403, and over the key's rate 429 with `Retry-After`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext
from api.ratelimit import TokenBuckets
from telemetry.store import TelemetryStore
from workorders.accounts import Accounts, Principal, Role
from workorders.db import Database

_bearer = HTTPBearer(auto_error=False, description="An API key: `fleetcare users create`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def database(ctx: Annotated[ApiContext, Depends(context)]) -> Database:
    return ctx.db


def store(ctx: Annotated[ApiContext, Depends(context)]) -> TelemetryStore:
    return ctx.store


Db = Annotated[Database, Depends(database)]
Store = Annotated[TelemetryStore, Depends(store)]


def caller(
    request: Request,
    db: Db,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    key = bearer.credentials if bearer else header
    challenge = {"WWW-Authenticate": "Bearer"}
    if not key:
        raise HTTPException(
            401,
            "an API key is needed: send `Authorization: Bearer <key>` "
            "(`fleetcare users create` issues one)",
            headers=challenge,
        )
    who = Accounts(db).authenticate(key)
    if who is None:
        raise HTTPException(401, "unknown or revoked API key", headers=challenge)
    limiter: TokenBuckets = request.app.state.limiter
    wait = limiter.take(who.user_id)
    if wait > 0:
        raise HTTPException(
            429,
            f"over {limiter.per_minute} requests a minute for this key: retry in "
            f"{math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return who


Caller = Annotated[Principal, Depends(caller)]


def role(*allowed: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only these roles through (403 for the others)."""

    def check(who: Caller) -> Principal:
        if who.role not in allowed:
            names = " or ".join(r.value for r in allowed)
            raise HTTPException(403, f"this needs the role {names}; your key is {who.role.value}")
        return who

    return check


Ops = Annotated[Principal, Depends(role(Role.OPS, Role.ADMIN))]
Technician = Annotated[Principal, Depends(role(Role.TECHNICIAN))]
