"""After the visit: the callback queue and what agents record, complaint cases, and the
settlement their outcomes decide. Ops (agents) work the queue and the cases; a customer
may complain about their own job or device and read their own cases. Ops limited to
territories see their outlets' jobs, cases and settlement lines."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import PlainTextResponse

from api import views
from api.accounts import Principal, Role
from api.deps import MAX_ID, Db, Ops, OrderId, role
from api.routes.ops import EARLIEST, LATEST
from api.schemas import (
    CallbackDuePublic,
    CallbackOutcome,
    CallRecord,
    ComplaintDetail,
    ComplaintPublic,
    DeviceComplaint,
    IsoDate,
    JobComplaint,
    NewComplaint,
    Problem,
    Resolution,
)
from service.callbacks import Call, CallbackPolicy, Callbacks
from service.complaints import Complaint, Complaints, Source
from service.csvout import dataclass_csv
from service.orders import WorkOrders
from service.settlement import Settlement, items_csv, settlement_csv, summarise
from service.warranty import ClaimLine, ClaimRow, claim_lines, claims

router = APIRouter(prefix="/api/v1", tags=["callbacks and complaints"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "your role may not do this"},
    404: {"model": Problem, "description": "not in your scope"},
    409: {"model": Problem, "description": "the job is not waiting for a callback"},
    422: {"model": Problem, "description": "the request is not valid; the message says why"},
}
Complainant = Annotated[Principal, Depends(role(Role.CUSTOMER, Role.OPS, Role.ADMIN))]
ComplaintId = Annotated[int, Path(ge=1, le=MAX_ID, description="The complaint's id")]


# -- callbacks ---------------------------------------------------------------------------
@router.get("/callbacks", response_model=list[CallbackDuePublic], responses=REFUSED)
async def callback_queue(
    who: Ops, db: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[CallbackDuePublic]:
    """Completed jobs waiting for their callback, the longest waiting first, with the
    customer's phone and the calls tried so far."""

    def run() -> list[CallbackDuePublic]:
        return [CallbackDuePublic.model_validate(d) for d in views.callbacks_due(db, who, limit)]

    return await asyncio.to_thread(run)


@router.post("/orders/{order_id}/callback", response_model=CallbackOutcome, responses=REFUSED)
async def record_callback(order_id: OrderId, body: CallRecord, who: Ops, db: Db) -> Any:
    """Record a callback call: satisfied or not (with the stars and the 0-10 answer if
    given), or nobody answered. The third unanswered call makes the customer unreachable.
    Not satisfied holds the technician's commission and opens a complaint."""

    def run() -> Any:
        views.order_in_scope(db, who, order_id)
        result = Callbacks(WorkOrders(db)).call(
            order_id,
            Call(body.outcome),
            agent=who.user_id,
            rating=body.stars,
            comment=body.comment,
            nps=body.recommend,
        )
        return CallbackOutcome.model_validate(
            {
                "order": result.order,
                "outcome": result.outcome.value if result.outcome else None,
                "attempts": result.attempts,
                "complaint": result.complaint,
            },
            from_attributes=True,
        )

    return await asyncio.to_thread(run)


# -- complaints --------------------------------------------------------------------------
@router.post(
    "/complaints",
    status_code=201,
    response_model=ComplaintPublic,
    responses={**REFUSED, 200: {"model": ComplaintPublic, "description": "added to the open case"}},
)
async def open_complaint(
    body: NewComplaint, who: Complainant, db: Db, response: Response
) -> ComplaintPublic:
    """Open a complaint about a job (`order_id`) or a device (`device_id`): a customer
    about their own, an agent for the customer on the line. A second complaint about a
    job whose case is open is added to that case (200)."""
    order_id = body.order_id if isinstance(body, JobComplaint) else None
    device_id = body.device_id if isinstance(body, DeviceComplaint) else None

    def run() -> tuple[Complaint, bool]:
        if order_id is not None:
            views.order_in_scope(db, who, order_id)
        else:
            views.get_device(db, who, str(device_id))
        cases = Complaints(db)
        before = cases.find(order_id=order_id, state="open") if order_id else []
        actor = f"customer:{who.customer_id}" if who.role is Role.CUSTOMER else who.user_id
        case = cases.open(
            source=Source.APP if who.role is Role.CUSTOMER else Source.CALL,
            description=body.description,
            actor=actor,
            order_id=order_id,
            device_id=device_id,
        )
        return case, not before

    case, created = await asyncio.to_thread(run)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/complaints/{case.id}"
    return ComplaintPublic.model_validate(case)


@router.get("/complaints", response_model=list[ComplaintPublic], responses=REFUSED)
async def list_complaints(
    who: Complainant,
    db: Db,
    state: Literal["open", "resolved"] | None = None,
    level: Literal["outlet", "region", "maker"] | None = None,
    outlet: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ComplaintPublic]:
    """Cases, the open ones due soonest first: ops see their outlets', a customer their
    own."""

    def run() -> list[ComplaintPublic]:
        found = views.complaints(db, who, state=state, level=level, outlet=outlet, limit=limit)
        return [ComplaintPublic.model_validate(c) for c in found]

    return await asyncio.to_thread(run)


@router.get("/complaints/{complaint_id}", response_model=ComplaintDetail, responses=REFUSED)
async def get_complaint(complaint_id: ComplaintId, who: Complainant, db: Db) -> ComplaintDetail:
    """One case with its history: opened, repeated, escalated, resolved."""

    def run() -> ComplaintDetail:
        case = views.complaint_in_scope(db, who, complaint_id)
        history = Complaints(db).history(case.id)
        return ComplaintDetail.model_validate(
            {**ComplaintPublic.model_validate(case).model_dump(), "history": history}
        )

    return await asyncio.to_thread(run)


@router.post(
    "/complaints/{complaint_id}/resolution", response_model=ComplaintPublic, responses=REFUSED
)
async def resolve_complaint(
    complaint_id: ComplaintId, body: Resolution, who: Ops, db: Db
) -> ComplaintPublic:
    """Resolve a case: what was done, and whether the complaint was upheld (the job's held
    commission is then forfeit; not upheld, it is released)."""

    def run() -> ComplaintPublic:
        views.complaint_in_scope(db, who, complaint_id)
        return ComplaintPublic.model_validate(
            Complaints(db).resolve(
                complaint_id, resolution=body.resolution, upheld=body.upheld, actor=who.user_id
            )
        )

    return await asyncio.to_thread(run)


# -- settlement --------------------------------------------------------------------------
@router.get(
    "/settlement",
    responses={
        **REFUSED,
        200: {
            "description": "JSON rows, or CSV with format=csv",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def settlement(
    who: Ops,
    db: Db,
    start: Annotated[IsoDate | None, Query(description="Default: the first of this month")] = None,
    end: Annotated[IsoDate | None, Query(description="Exclusive; default: tomorrow")] = None,
    items: Annotated[bool, Query(description="One line per job, with why it is held")] = False,
    format: Literal["json", "csv"] = "json",
    unreachable: Literal["pay", "hold"] = "pay",
) -> Any:
    """Commission per outlet and technician for a period: payable (callback satisfied,
    customer unreachable if the policy pays, complaint not upheld), held, forfeit
    (complaint upheld), awaiting callback. As JSON or CSV."""
    a, b = _period(start, end)

    def run() -> Any:
        s = Settlement(db, CallbackPolicy(unreachable_pays=unreachable == "pay"))
        mine = views.outlets_of(db, who)
        lines = [i for i in s.items(a, b) if mine is None or i.outlet_id in mine]
        if items:
            return items_csv(lines) if format == "csv" else [_plain(i) for i in lines]
        rows = summarise(lines)
        return settlement_csv(rows) if format == "csv" else [_plain(r) for r in rows]

    out = await asyncio.to_thread(run)
    if format == "csv":
        return PlainTextResponse(out, media_type="text/csv")
    return out


def _period(start: date | None, end: date | None) -> tuple[datetime, datetime]:
    """[start, end) at UTC midnight: by default this month so far; nothing happened
    outside the years the engine knows (an empty range is empty, not an error)."""
    today = datetime.now(UTC).date()
    end = min(end or today + timedelta(days=1), LATEST)
    start = max(start or today.replace(day=1), EARLIEST)
    return (
        datetime.combine(start, datetime.min.time(), tzinfo=UTC),
        datetime.combine(end, datetime.min.time(), tzinfo=UTC),
    )


def _plain(x: Any) -> dict[str, Any]:
    return asdict(x)


@router.get(
    "/warranty-claims",
    responses={
        **REFUSED,
        200: {
            "description": "JSON rows, or CSV with format=csv",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def warranty_claims(
    who: Ops,
    db: Db,
    start: Annotated[IsoDate | None, Query(description="Default: the first of this month")] = None,
    end: Annotated[IsoDate | None, Query(description="Exclusive; default: tomorrow")] = None,
    items: Annotated[bool, Query(description="One line per bill line the maker pays")] = False,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """What the maker owes each outlet for work under warranty on jobs completed in the
    period: jobs, parts and labour, or each bill line."""
    a, b = _period(start, end)

    def run() -> Any:
        mine = views.outlets_of(db, who)
        lines = [x for x in claim_lines(db, a, b) if mine is None or x.outlet_id in mine]
        rows: list[Any] = lines if items else claims(lines)
        if format == "csv":
            return dataclass_csv(ClaimLine if items else ClaimRow, rows)
        return [_plain(r) for r in rows]

    out = await asyncio.to_thread(run)
    if format == "csv":
        return PlainTextResponse(out, media_type="text/csv")
    return out
