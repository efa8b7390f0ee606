"""Pages a household opens from the app or from a message: the monthly air report.

Signed in with the customer's own account (the same signed session cookie as the
console, HttpOnly and SameSite=Lax); a page shows only what the account may see through
the API (a customer their own devices). The link in the monthly message,
`/my/air/{device_id}?month=YYYY-MM`, leads through the sign-in page back to the report."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import views
from api.accounts import Accounts, Principal, Role
from api.console import Ctx, page, signed_in
from api.deps import SESSION_COOKIE, Db, Store, principal_of
from db.errors import DomainError, NotFound
from service.air_report import AirReports, parse_month

router = APIRouter(prefix="/my", include_in_schema=False)


def _next(path: str) -> str:
    """Where to go after signing in: a page of ours only (never another site)."""
    return path if path.startswith("/my/") and not path.startswith("/my//") else "/my"


async def _who(request: Request, db: Db) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return await principal_of(request, db, token) if token else None


def _to_sign_in(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/my/login?{urlencode({'next': here})}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/my", error: str = "") -> HTMLResponse:
    return page(request, "my_login.html", None, next=_next(next), error=error)


@router.post("/login")
async def login(
    request: Request,
    db: Db,
    ctx: Ctx,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/my",
) -> Response:
    wait = request.app.state.login_limiter.take(username)
    who = None if wait > 0 else await asyncio.to_thread(Accounts(db).login, username, password)
    if who is None or who.role is not Role.CUSTOMER:
        why = (
            "too many tries: wait a minute"
            if wait > 0
            else "this page is for customer accounts"
            if who is not None
            else "wrong account or password"
        )
        return page(request, "my_login.html", None, next=_next(next), error=why, username=username)
    return signed_in(ctx, who, _next(next))


@router.get("", response_class=HTMLResponse)
async def my_devices(request: Request, db: Db) -> Response:
    """The household's appliances, each with its air report where it has one."""
    who = await _who(request, db)
    if who is None:
        return _to_sign_in(request)
    rows = await asyncio.to_thread(views.list_devices, db, who, limit=100, offset=0, search=None)
    profiles = request.app.state.profiles
    reporting = {n for n, p in profiles.items() if p.doc.air_quality}
    return page(
        request,
        "my_devices.html",
        who,
        devices=[r for r in rows if r.device_type in reporting],
    )


@router.get("/air/{device_id}", response_class=HTMLResponse)
async def air_report_page(
    request: Request,
    device_id: str,
    db: Db,
    store: Store,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    who = await _who(request, db)
    if who is None:
        return _to_sign_in(request)
    try:
        await asyncio.to_thread(views.get_device, db, who, device_id)
        report = await AirReports(db, store, request.app.state.profiles).report(
            device_id,
            parse_month(month) if month else None,
            language=request.headers.get("accept-language"),
        )
    except DomainError as exc:
        out = page(request, "air_report.html", who, report=None, error=str(exc))
        out.status_code = 404 if isinstance(exc, NotFound) else 422
        return out
    api = f"/api/v1/devices/{quote(device_id)}/air-report?month={report.month}"
    return page(
        request,
        "air_report.html",
        who,
        report=report,
        api=api,
        made=datetime.now(UTC),
        error="",
    )
