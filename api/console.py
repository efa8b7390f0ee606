"""The ops console: server-rendered pages (Jinja2, htmx for the clicks, uPlot for the
charts, both served from `api/static`, never a CDN), signed in with a password; the
session is the same signed token the API takes, in an HttpOnly, SameSite=Lax cookie
(so another site cannot post a form with it).

Pages: the review queue of auto-generated jobs (each with its evidence chart and
one-click approve / assign / reject / cancel), a device page (telemetry charts, the
filter-life curve to the predicted exhaustion), the SLA board, KPIs, the parts forecast,
quality analytics for R&D (`console_quality.py`) and dead letters. The queue follows
changes live over server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from api import views
from api.accounts import Accounts, Principal, Role
from api.context import ApiContext
from api.deps import SESSION_COOKIE, Db, OrderId, context, principal_of, require_unrestricted
from api.routes.orders import _approve, _cancel, _reject
from db.database import Database
from db.errors import DomainError
from db.tables import filter_replacements, work_order_events
from ingest.dead_letters import DeadLetterRepository
from service.dispatch import Dispatcher
from service.intake import Channel, Intake, Report, UnknownProblem
from service.kpis import GroupBy, kpis
from service.lifecycle import Origin, State
from service.orders import Opened, WorkOrder, WorkOrders
from service.parts_forecast import forecast
from telemetry.profile import ProfileSet

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)
EVENTS_POLL_S = 1.0


class SignIn(Exception):
    """Not signed in (or not ops): go to the login page."""


async def console_user(request: Request, db: Db) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    who = await principal_of(request, db, token) if token else None
    if who is None or who.role not in (Role.OPS, Role.ADMIN):
        raise SignIn
    return who


OpsUser = Annotated[Principal, Depends(console_user)]
Ctx = Annotated[ApiContext, Depends(context)]


def back_to(to: str, said: str, error: bool = False) -> RedirectResponse:
    """After a form: back to its page (post/redirect/get), saying what the action did,
    or (`error`) why it was refused."""
    joint = "&" if "?" in to else "?"
    return RedirectResponse(
        f"{to}{joint}{urlencode({'error' if error else 'said': said})}", status_code=303
    )


async def form_action(to: str, run: Callable[[], str]) -> RedirectResponse:
    """A form's action: `run` (blocking, off the event loop) says what it did; back to
    `to` saying so, or saying why the domain refused it."""
    try:
        return back_to(to, await asyncio.to_thread(run))
    except DomainError as exc:
        return back_to(to, str(exc), error=True)


def page(request: Request, name: str, who: Principal | None, **data: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"who": who, **data})


# -- signing in --------------------------------------------------------------------------
def _sign_in(request: Request, **data: Any) -> HTMLResponse:
    """The sign-in page, with the login the running demo made (if it is one)."""
    hint = request.app.state.ctx.sign_in_hint
    return page(request, "login.html", None, hint=hint, **data)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, error: str = "") -> HTMLResponse:
    return _sign_in(request, error=error)


@router.post("/login")
async def login(
    request: Request,
    db: Db,
    ctx: Ctx,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    wait = request.app.state.login_limiter.take(username)
    who = None if wait > 0 else await asyncio.to_thread(Accounts(db).login, username, password)
    if who is None or who.role not in (Role.OPS, Role.ADMIN):
        why = (
            "too many tries: wait a minute"
            if wait > 0
            else "the console is for ops and admin accounts"
            if who is not None
            else "wrong account or password"
        )
        return _sign_in(request, error=why, username=username)
    return signed_in(ctx, who, "/console")


def signed_in(ctx: ApiContext, who: Principal, to: str) -> RedirectResponse:
    """On to `to`, with the session cookie: HttpOnly (no script reads it), SameSite=Lax
    (no other site posts a form with it), Secure behind TLS."""
    out = RedirectResponse(to, status_code=303)
    out.set_cookie(
        SESSION_COOKIE,
        ctx.tokens.issue(who.user_id),
        max_age=int(ctx.tokens.ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ctx.secure_cookies,
    )
    return out


@router.post("/logout")
async def logout(request: Request, db: Db) -> Response:
    """Sign out: the session cookie is dropped here and refused everywhere, as is every
    other sign-in of the account (a copied cookie does not outlive it)."""
    token = request.cookies.get(SESSION_COOKIE)
    who = await principal_of(request, db, token) if token else None
    if who is not None:
        await asyncio.to_thread(Accounts(db).end_sessions, who.user_id)
    out = RedirectResponse("/console/login", status_code=303)
    out.delete_cookie(SESSION_COOKIE)
    return out


# -- the review queue --------------------------------------------------------------------
def _queue(db: Database, who: Principal, show: str) -> dict[str, Any]:
    states = {
        "review": (State.PROPOSED.value,),
        "live": tuple(
            s.value
            for s in State
            if s not in (State.CLOSED, State.REJECTED, State.CANCELLED, State.COMPLETED)
        ),
        "all": (),
    }[show]
    f = views.OrderFilter(states=states, origin=Origin.AUTO.value if show == "review" else None)
    orders = views.orders(db, who, f, limit=100, offset=0)
    wo = WorkOrders(db)
    now = datetime.now(UTC)
    evidence = wo.evidence_for([o.id for o in orders])
    return {
        "orders": [
            {"o": o, "evidence": evidence.get(o.id, []), "sla": wo.sla_status(o, now).value}
            for o in orders
        ],
        "technicians": views.technicians_in_scope(db, who),
        "show": show,
    }


@router.get("", response_class=HTMLResponse)
async def queue_page(request: Request, who: OpsUser, db: Db, show: str = "review") -> HTMLResponse:
    show = show if show in ("review", "live", "all") else "review"
    data = await asyncio.to_thread(_queue, db, who, show)
    return page(request, "queue.html", who, **data)


@router.get("/queue/rows", response_class=HTMLResponse)
async def queue_rows(request: Request, who: OpsUser, db: Db, show: str = "review") -> HTMLResponse:
    show = show if show in ("review", "live", "all") else "review"
    data = await asyncio.to_thread(_queue, db, who, show)
    return page(request, "_rows.html", who, **data)


def _row(
    request: Request, db: Database, who: Principal, order: WorkOrder, error: str = ""
) -> HTMLResponse:
    wo = WorkOrders(db)
    item = {"o": order, "evidence": wo.evidence(order.id), "sla": wo.sla_status(order).value}
    return page(request, "_row.html", who, item=item, error=error)


async def _act(
    request: Request, db: Database, who: Principal, order_id: int, act: Any
) -> HTMLResponse:
    def run() -> HTMLResponse:
        try:
            moved = act()
            return _row(request, db, who, moved)
        except DomainError as exc:
            order = views.order_in_scope(db, who, order_id)
            return _row(request, db, who, order, error=str(exc))

    return await asyncio.to_thread(run)


@router.post("/orders/{order_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, order_id: OrderId, who: OpsUser, db: Db) -> HTMLResponse:
    return await _act(request, db, who, order_id, lambda: _approve(db, who, order_id))


@router.post("/orders/{order_id}/reject", response_class=HTMLResponse)
async def reject(
    request: Request,
    order_id: OrderId,
    who: OpsUser,
    db: Db,
    reason: Annotated[str, Form()] = "rejected in the console",
) -> HTMLResponse:
    return await _act(
        request,
        db,
        who,
        order_id,
        lambda: _reject(db, who, order_id, reason or "rejected in the console"),
    )


@router.post("/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel(
    request: Request,
    order_id: OrderId,
    who: OpsUser,
    db: Db,
    reason: Annotated[str, Form()] = "cancelled in the console",
) -> HTMLResponse:
    return await _act(
        request,
        db,
        who,
        order_id,
        lambda: _cancel(db, who, order_id, reason or "cancelled in the console"),
    )


@router.post("/orders/{order_id}/assign", response_class=HTMLResponse)
async def assign(
    request: Request, order_id: OrderId, who: OpsUser, db: Db, technician_id: Annotated[str, Form()]
) -> HTMLResponse:
    def act() -> WorkOrder:
        views.order_in_scope(db, who, order_id)
        views.technician_in_scope(db, who, technician_id)
        order = WorkOrders(db).get(order_id)
        if order.state is State.PROPOSED:  # approving by naming the technician
            WorkOrders(db).transition(
                order_id, State.OPEN, actor=who.user_id, expect=State.PROPOSED
            )
        return Dispatcher(db).assign_to(order_id, technician_id, actor=who.user_id)

    return await _act(request, db, who, order_id, act)


@router.get("/events")
async def events(request: Request, who: OpsUser, db: Db) -> StreamingResponse:
    """Server-sent events: `orders` whenever any work order moved (the page refreshes
    its rows). Polls the audit trail's newest id: cheap, and works with any number of
    API processes."""

    def newest() -> int:
        with db.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(work_order_events.c.id))).scalar() or 0)

    async def stream() -> AsyncIterator[str]:
        seen = await asyncio.to_thread(newest)
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            await asyncio.sleep(EVENTS_POLL_S)
            now = await asyncio.to_thread(newest)
            if now != seen:
                seen = now
                yield f"event: orders\ndata: {now}\n\n"
            else:
                yield ": still here\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


# -- a device ---------------------------------------------------------------------------
def _device(db: Database, who: Principal, device_id: str, profiles: ProfileSet) -> dict[str, Any]:
    now = datetime.now(UTC)
    health = db.read(lambda conn: views.health(conn, who, device_id, now, profiles))
    with db.engine.connect() as conn:
        replaced = dict(
            conn.execute(
                sa.select(filter_replacements.c.stage, sa.func.max(filter_replacements.c.at))
                .where(filter_replacements.c.device_id == device_id)
                .group_by(filter_replacements.c.stage)
            ).all()
        )
    curves = []
    for f in health["filters"]:
        curves.append(
            {
                "stage": f["stage"],
                "now": now.timestamp(),
                "condition": f["condition_pct"],
                "exhausted": f["predicted_exhaustion"].timestamp(),
                "low": f["low"].timestamp() if f["low"] else None,
                "high": f["high"].timestamp() if f["high"] else None,
                "rated": f["rated_exhaustion"].timestamp() if f["rated_exhaustion"] else None,
                "replaced": replaced[f["stage"]].timestamp() if f["stage"] in replaced else None,
            }
        )
    orders = views.orders(db, who, views.OrderFilter(device_id=device_id), limit=20, offset=0)
    problems = Intake(WorkOrders(db), profiles).problems_for(health["device_type"])
    return {"h": health, "curves": json.dumps(curves), "orders": orders, "problems": problems}


@router.get("/devices/{device_id}", response_class=HTMLResponse)
async def device_page(
    request: Request,
    device_id: str,
    who: OpsUser,
    db: Db,
    job: OrderId | None = None,
    created: bool = False,
    error: str = "",
) -> HTMLResponse:
    data = await asyncio.to_thread(_device, db, who, device_id, request.app.state.profiles)
    said = error or (
        f"Job #{job} opened; the customer has been told."
        if created
        else f"Added to live job #{job} for the same problem."
        if job
        else ""
    )
    profile = request.app.state.profiles.get(data["h"]["device_type"])
    return page(
        request, "device.html", who, device_id=device_id, said=said, error=bool(error),
        air_report=bool(profile and profile.doc.air_quality), **data,
    )  # fmt: skip


@router.post("/devices/{device_id}/orders")
async def report(
    request: Request,
    device_id: str,
    who: OpsUser,
    db: Db,
    problem_kind: Annotated[str, Form()],
    contact: Annotated[str, Form(max_length=128)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    channel: Annotated[Literal["phone", "ops"], Form()] = "phone",
) -> RedirectResponse:
    """The call centre's form: open a job for the customer on the line (or add to the
    live one for the same problem), then back to the device with what happened."""

    def run() -> Opened:
        views.get_device(db, who, device_id)
        intake = Intake(WorkOrders(db), request.app.state.profiles)
        return intake.report(
            Report(
                device_id=device_id,
                problem_kind=problem_kind,
                channel=Channel(channel),
                reporter=who.user_id,
                description=description,
                contact=contact or None,
            )
        )

    back = f"/console/devices/{quote(device_id)}"
    try:
        opened = await asyncio.to_thread(run)
    except UnknownProblem as exc:
        return RedirectResponse(f"{back}?{urlencode({'error': str(exc)})}", status_code=303)
    created = "true" if opened.created else "false"
    return RedirectResponse(f"{back}?job={opened.order.id}&created={created}", status_code=303)


@router.get("/devices", response_class=HTMLResponse)
async def device_search(request: Request, who: OpsUser, db: Db, q: str = "") -> HTMLResponse:
    rows = await asyncio.to_thread(
        views.list_devices, db, who, limit=100, offset=0, search=q or None
    )
    return page(
        request,
        "table.html",
        who,
        title="Devices",
        search=q,
        columns=["id", "device_type", "serial", "customer_id", "territory_id", "address"],
        rows=[asdict(r) for r in rows],
        link={"id": "/console/devices/"},
    )


# -- boards ---------------------------------------------------------------------------
@router.get("/sla", response_class=HTMLResponse)
async def sla_board(request: Request, who: OpsUser, db: Db) -> HTMLResponse:
    def run() -> list[dict[str, Any]]:
        out = []
        now = datetime.now(UTC)
        for sla in ("breached", "at_risk"):
            f = views.OrderFilter(sla=sla)
            for o in views.orders(db, who, f, limit=500, offset=0, now=now):
                late = (now - o.due_at).total_seconds() / 3600 if o.due_at else None
                out.append(
                    {
                        "sla": sla,
                        "id": o.id,
                        "device_id": o.device_id,
                        "problem_kind": o.problem_kind,
                        "state": o.state.value,
                        "technician_id": o.technician_id,
                        "territory_id": o.territory_id,
                        "due_at": f"{o.due_at:%Y-%m-%d %H:%M}" if o.due_at else "",
                        "hours_over": f"{late:+.1f}" if late is not None else "",
                    }
                )
        return out

    rows = await asyncio.to_thread(run)
    return page(
        request,
        "table.html",
        who,
        title="SLA board: breached, then at risk",
        columns=[
            "sla",
            "id",
            "device_id",
            "problem_kind",
            "state",
            "technician_id",
            "territory_id",
            "due_at",
            "hours_over",
        ],
        rows=rows,
        link={"device_id": "/console/devices/"},
    )


@router.get("/kpis", response_class=HTMLResponse)
async def kpi_board(request: Request, who: OpsUser, db: Db) -> HTMLResponse:
    end = datetime.now(UTC) + timedelta(days=1)
    by = GroupBy.TERRITORY if who.territories else GroupBy.OUTLET
    rows = await asyncio.to_thread(kpis, db, end - timedelta(weeks=12), end, by=by)
    rows = [r for r in rows if not who.territories or r.group in who.territories]
    shown = [
        {k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in asdict(r).items()} for r in rows
    ]
    chart = {
        "x": [
            datetime.combine(r.period, datetime.min.time(), tzinfo=UTC).timestamp() for r in rows
        ],
        "groups": [r.group for r in rows],
        "opened": [r.opened for r in rows],
        "completed": [r.completed for r in rows],
    }
    return page(
        request,
        "table.html",
        who,
        title="KPIs, per outlet and week (12 weeks)",
        columns=list(shown[0]) if shown else ["group", "period"],
        rows=shown,
        kpi_chart=json.dumps(chart),
    )


@router.get("/parts", response_class=HTMLResponse)
async def parts_board(request: Request, who: OpsUser, db: Db) -> HTMLResponse:
    rows = await asyncio.to_thread(lambda: views.parts_in_scope(db, who, forecast(db)))
    shown = [
        {k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in asdict(r).items()} for r in rows
    ]
    return page(
        request,
        "table.html",
        who,
        title="Parts demand forecast (8 weeks)",
        columns=[
            "outlet_id",
            "sku",
            "week",
            "from_orders",
            "from_predictions",
            "expected",
            "on_hand",
            "shortfall",
        ],
        rows=shown,
    )


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, who: OpsUser, db: Db) -> HTMLResponse:
    require_unrestricted(who)  # raw payloads from anywhere in the fleet, as the API's 403
    rows = await asyncio.to_thread(DeadLetterRepository(db).list, limit=200)
    shown = [
        {
            "id": d.id,
            "reason": d.reason,
            "detail": d.detail,
            "topic": d.topic,
            "count": d.count,
            "last_seen_at": f"{d.last_seen_at:%Y-%m-%d %H:%M:%S}",
            "payload": d.payload[:120].decode("utf-8", "replace"),
        }
        for d in rows
    ]
    return page(
        request,
        "table.html",
        who,
        title="Dead letters (pending)",
        columns=["id", "reason", "detail", "topic", "count", "last_seen_at", "payload"],
        rows=shown,
        replay=True,
    )
