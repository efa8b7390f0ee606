"""Dependencies the routes declare, so their signatures read like what they need:
`who: Caller`, `db: Db`. Authentication is a bearer credential (`Authorization: Bearer
…`: an API key `fc_…` or a signed token from `/api/v1/auth/token`), the `X-API-Key`
header, or the console's session cookie (the same signed token). Missing or unknown is
401, a role that may not call the route is 403, and over the key's rate 429 with
`Retry-After`."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.accounts import Principal, Role, aprincipal_by_id, aprincipal_by_key
from api.auth import looks_like_jwt
from api.authcache import CredentialCache
from api.context import ApiContext
from api.guard import PRINCIPAL
from api.ratelimit import TokenBuckets
from db.database import Database
from telemetry.store import TelemetryStore

SESSION_COOKIE = "fc_session"
_bearer = HTTPBearer(auto_error=False, description="An API key: `fleetcare users create`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def database(ctx: Annotated[ApiContext, Depends(context)]) -> Database:
    return ctx.db


async def store(ctx: Annotated[ApiContext, Depends(context)]) -> TelemetryStore:
    return ctx.store


Db = Annotated[Database, Depends(database)]
Store = Annotated[TelemetryStore, Depends(store)]


async def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    # the two security dependencies put the schemes in OpenAPI; `authenticate` reads them
    return await authenticate(request)


async def authenticate(request: Request) -> Principal:
    """Who calls, from the bearer credential, the X-API-Key header or the console's
    cookie; 401 without one or with an unknown one, 429 over the key's rate. `Caller` as a
    plain call, for the route too hot for FastAPI's dependency resolution (device health:
    a third of its CPU went there, measured)."""
    checked: Principal | None = request.scope.get(PRINCIPAL)  # by api/guard.py, before the body
    if checked is not None:
        return checked
    headers = request.headers
    scheme, _, bearer = headers.get("authorization", "").partition(" ")
    key = (
        bearer.strip()
        if scheme.lower() == "bearer" and bearer.strip()
        else headers.get("x-api-key") or request.cookies.get(SESSION_COOKIE)
    )
    challenge = {"WWW-Authenticate": "Bearer"}
    if not key:
        raise HTTPException(
            401,
            "an API key or token is needed: send `Authorization: Bearer <key>` "
            "(`fleetcare users create` issues one; `/api/v1/auth/token` signs you in)",
            headers=challenge,
        )
    ctx: ApiContext = request.app.state.ctx
    who = await principal_of(request, ctx.db, key)
    if who is None:
        raise HTTPException(
            401, "unknown or revoked API key, or an expired token", headers=challenge
        )
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


SECURITY: list[dict[str, list[str]]] = [
    {"HTTPBearer": []},
    {"APIKeyHeader": []},
]  # what `Caller` declares, by hand


Caller = Annotated[Principal, Depends(caller)]


async def principal_of(request: Request, db: Database, credential: str) -> Principal | None:
    """Who a key or signed token belongs to: the account read from the database, or
    remembered for `api.auth_cache_s` seconds (api/authcache.py). A token's signature
    and expiry are checked on every request all the same."""
    cache: CredentialCache = request.app.state.credentials
    if looks_like_jwt(credential):
        ctx: ApiContext = request.app.state.ctx
        signed = ctx.tokens.subject(credential)
        if signed is None:
            return None
        remembered = f"user:{signed.user_id}"
        who = cache.get(remembered)
        if who is None:
            who = await aprincipal_by_id(db, signed.user_id)
            if who is not None:
                cache.put(remembered, who)
        if who is not None and who.sessions_after and signed.at <= who.sessions_after:
            return None  # signed out, password changed or disabled since
        return who
    who = cache.get(credential)
    if who is not None:
        return who
    who = await aprincipal_by_key(db, credential)
    if who is not None:  # only a fresh read starts the clock: a hit never extends it
        cache.put(credential, who)
    return who


def role(*allowed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only these roles through (403 for the others)."""

    async def check(who: Caller) -> Principal:  # async: no thread for a comparison
        if who.role not in allowed:
            names = " or ".join(r.value for r in allowed)
            raise HTTPException(403, f"this needs the role {names}; your key is {who.role.value}")
        return who

    return check


def require_unrestricted(who: Principal) -> None:
    """403 for ops limited to territories: the fleet-wide pages (silences, dead letters)
    name customers and devices anywhere."""
    if who.territories:
        raise HTTPException(
            403, "this is fleet-wide: it needs ops without territory limits, or admin"
        )


MAX_ID = 2**31 - 1  # ids are 32-bit in the database: larger is no id of ours
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The work order's id")]
Ops = Annotated[Principal, Depends(role(Role.OPS, Role.ADMIN))]
Technician = Annotated[Principal, Depends(role(Role.TECHNICIAN))]
Customer = Annotated[Principal, Depends(role(Role.CUSTOMER))]
