"""Work orders. Ops: the queue (filters, SLA at risk or breached), approve or reject
what rules and models proposed (one or many), assign and reassign, every other move of
the lifecycle. Customers: their own job's visit (free slots, book, reschedule), cancel
it, rate it once done. An approved job goes straight to dispatch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from api import views
from api.accounts import Principal, Role
from api.deps import MAX_ID, Caller, Customer, Db, Ops, OrderId, role
from api.schemas import (
    Assign,
    Booking,
    BulkIds,
    BulkReason,
    BulkResult,
    OrderDetail,
    OrderPublic,
    Problem,
    Rating,
    Reason,
    Report,
    Reported,
    ShopReceived,
    SlotPublic,
    Transition,
)
from db.database import Database
from db.errors import DomainError
from service.appointments import Appointments
from service.callbacks import Callbacks
from service.dispatch import Dispatcher
from service.errors import InvalidTransition
from service.intake import Channel, Intake
from service.intake import Report as IntakeReport
from service.lifecycle import Origin, State
from service.orders import Opened, WorkOrder, WorkOrders
from service.shop_orders import Received, ShopOrderIn, ShopOrders

router = APIRouter(prefix="/api/v1/orders", tags=["work orders"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "your role may not do this"},
    404: {"model": Problem, "description": "no such order in your scope"},
    409: {"model": Problem, "description": "the order is not in a state that allows it"},
    422: {"model": Problem, "description": "the request is not valid; the message says why"},
}
# moves with a route of their own, which does what the move needs besides the state
OWN_ROUTE = {
    State.ASSIGNED: "name the technician with /assign",
    State.ACCEPTED: "the technician accepts it (/api/v1/jobs/{id}/accept)",
    State.SCHEDULED: "book the visit with /appointment",
    State.IN_PROGRESS: "the technician starts it (/api/v1/jobs/{id}/start)",
    State.COMPLETED: "the technician completes it with the report (/api/v1/jobs/{id}/complete)",
    State.CLOSED: "its callback closes it: the customer's /rating, or an agent's /callback",
    State.REJECTED: "use /reject",
    State.CANCELLED: "use /cancel",
}
Booker = Annotated[Principal, Depends(role(Role.CUSTOMER, Role.OPS, Role.ADMIN))]
Reporter = Booker  # who may ask for a job: the customer, or an agent or ops for them


@router.get("", response_model=list[OrderPublic], responses=REFUSED)
async def queue(
    who: Ops,
    db: Db,
    state: Annotated[list[State] | None, Query(description="Repeat for several.")] = None,
    origin: Origin | None = None,
    problem: str | None = None,
    territory: str | None = None,
    device: str | None = None,
    min_priority: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    sla: Annotated[
        Literal["at_risk", "breached"] | None,
        Query(description="Live orders due within the warning window, or past due"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[OrderPublic]:
    """The queue, newest first (with `sla`, most overdue first): e.g.
    `?state=proposed&origin=auto` is what to review."""
    f = views.OrderFilter(
        states=tuple(s.value for s in state or ()),
        origin=origin.value if origin else None,
        problem=problem,
        territory=territory,
        min_priority=min_priority,
        sla=sla,
        device_id=device,
    )
    rows = await asyncio.to_thread(views.orders, db, who, f, limit=limit, offset=offset)
    return [OrderPublic.model_validate(o) for o in rows]


@router.get("/mine", response_model=list[OrderPublic], responses=REFUSED)
async def my_orders(
    who: Customer, db: Db, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[OrderPublic]:
    """A customer's jobs, newest first."""
    rows = await asyncio.to_thread(
        views.orders, db, who, views.OrderFilter(), limit=limit, offset=0
    )
    return [OrderPublic.model_validate(o) for o in rows]


# -- intake ---------------------------------------------------------------------------
@router.post(
    "/shop",
    response_model=ShopReceived,
    status_code=201,
    responses={**REFUSED, 200: {"model": ShopReceived, "description": "received before"}},
)
async def shop_order(body: ShopOrderIn, who: Ops, db: Db, response: Response) -> Any:
    """A shop's order for an installation: registers the unit (model, serial, purchase
    date: its warranty starts there), its owner (found by phone, or new) and its site,
    and opens the installation job, open at once. Idempotent by `shop_id` and
    `shop_order_id`: the same order again is the same job (200, `created` false)."""

    def run() -> Received:
        return ShopOrders(WorkOrders(db)).receive(body)

    got = await asyncio.to_thread(run)
    response.status_code = 201 if got.created else 200
    response.headers["Location"] = f"/api/v1/orders/{got.order.id}"
    return ShopReceived(
        created=got.created,
        order=OrderPublic.model_validate(got.order),
        device_id=got.device_id,
        customer_id=got.customer_id,
    )


@router.post(
    "",
    response_model=Reported,
    status_code=201,
    responses={**REFUSED, 200: {"model": Reported, "description": "added to the live job"}},
)
async def report(body: Report, who: Reporter, db: Db, request: Request) -> Any:
    """Ask for a job on a device: a customer for their own device (in the app), a
    call-centre agent or ops for a customer's (`channel` phone, the default, or ops).
    The job is open at once, and the customer hears of it on their channel. One live
    job per device and problem: if one is live, this report is added to it (200, with
    `created` false) instead of opening a second (201)."""
    if who.role is Role.CUSTOMER:
        if body.channel not in (None, "app"):
            raise HTTPException(422, "a customer reports through the app: leave out channel")
        channel, reporter = Channel.APP, f"customer:{who.customer_id}"
    elif body.channel == "app":
        raise HTTPException(422, "only the customer reports through the app: use phone or ops")
    else:
        channel, reporter = Channel(body.channel or "phone"), who.user_id

    def run() -> Opened:
        views.get_device(db, who, body.device_id)  # 404 outside the caller's scope
        intake = Intake(WorkOrders(db), request.app.state.profiles)
        return intake.report(
            IntakeReport(
                device_id=body.device_id,
                problem_kind=body.problem_kind,
                channel=channel,
                reporter=reporter,
                description=body.description,
                photos=[str(u) for u in body.photos],
                contact=body.contact,
                preferred_time=body.preferred_time,
            )
        )

    opened = await asyncio.to_thread(run)
    result = Reported(created=opened.created, order=OrderPublic.model_validate(opened.order))
    return JSONResponse(
        result.model_dump(mode="json"),
        status_code=201 if opened.created else 200,
        headers={"Location": f"/api/v1/orders/{opened.order.id}"},
    )


# -- review ---------------------------------------------------------------------------
def _approve(db: Database, who: Principal, order_id: int) -> WorkOrder:
    views.order_in_scope(db, who, order_id)
    now = datetime.now(UTC)
    WorkOrders(db).transition(
        order_id, State.OPEN, actor=who.user_id, expect=State.PROPOSED, now=now
    )
    Dispatcher(db).run([order_id], now=now)
    return WorkOrders(db).get(order_id)


def _reject(db: Database, who: Principal, order_id: int, reason: str) -> WorkOrder:
    views.order_in_scope(db, who, order_id)
    return WorkOrders(db).transition(
        order_id, State.REJECTED, actor=who.user_id, reason=reason, expect=State.PROPOSED
    )


def _cancel(db: Database, who: Principal, order_id: int, reason: str) -> WorkOrder:
    order = views.order_in_scope(db, who, order_id)
    actor = who.user_id
    if who.role is Role.CUSTOMER:
        actor = f"customer:{who.customer_id}"
        if order.state is State.IN_PROGRESS:
            raise InvalidTransition(order_id, order.state, State.CANCELLED)
    return WorkOrders(db).transition(order_id, State.CANCELLED, actor=actor, reason=reason)


def _bulk(ids: list[int], act: Callable[[int], WorkOrder]) -> BulkResult:
    done, refused = [], {}
    for order_id in dict.fromkeys(ids):
        try:
            done.append(OrderPublic.model_validate(act(order_id)))
        except DomainError as exc:
            refused[order_id] = str(exc)
    return BulkResult(done=done, refused=refused)


@router.post("/bulk/approve", response_model=BulkResult, responses=REFUSED)
async def bulk_approve(body: BulkIds, who: Ops, db: Db) -> BulkResult:
    """Approve several proposed jobs; each that cannot be says why, the rest go on."""
    return await asyncio.to_thread(_bulk, body.ids, lambda i: _approve(db, who, i))


@router.post("/bulk/reject", response_model=BulkResult, responses=REFUSED)
async def bulk_reject(body: BulkReason, who: Ops, db: Db) -> BulkResult:
    """Reject several proposed jobs with one reason."""
    return await asyncio.to_thread(_bulk, body.ids, lambda i: _reject(db, who, i, body.reason))


@router.post("/bulk/cancel", response_model=BulkResult, responses=REFUSED)
async def bulk_cancel(body: BulkReason, who: Ops, db: Db) -> BulkResult:
    """Cancel several live orders with one reason."""
    return await asyncio.to_thread(_bulk, body.ids, lambda i: _cancel(db, who, i, body.reason))


@router.get("/{order_id}", response_model=OrderDetail, responses=REFUSED)
async def detail(order_id: OrderId, who: Caller, db: Db) -> OrderDetail:
    """One order: its evidence (ops), history, SLA standing, offered visit slots and the
    moves it may make now."""
    found = await asyncio.to_thread(views.order_detail, db, who, order_id, datetime.now(UTC))
    return OrderDetail.model_validate(found)


@router.post("/{order_id}/approve", response_model=OrderPublic, responses=REFUSED)
async def approve(order_id: OrderId, who: Ops, db: Db) -> OrderPublic:
    """Approve a proposed job: it opens and is dispatched to the best technician."""
    return OrderPublic.model_validate(await asyncio.to_thread(_approve, db, who, order_id))


@router.post("/{order_id}/reject", response_model=OrderPublic, responses=REFUSED)
async def reject(order_id: OrderId, body: Reason, who: Ops, db: Db) -> OrderPublic:
    """Reject a proposed job, with the reason (kept in its history)."""
    found = await asyncio.to_thread(_reject, db, who, order_id, body.reason)
    return OrderPublic.model_validate(found)


@router.post("/{order_id}/cancel", response_model=OrderPublic, responses=REFUSED)
async def cancel(order_id: OrderId, body: Reason, who: Booker, db: Db) -> OrderPublic:
    """Cancel a live order, with the reason. A customer may cancel their own job until
    the technician has started."""
    found = await asyncio.to_thread(_cancel, db, who, order_id, body.reason)
    return OrderPublic.model_validate(found)


# -- ops steer --------------------------------------------------------------------------
@router.post("/{order_id}/assign", response_model=OrderPublic, responses=REFUSED)
async def assign(order_id: OrderId, body: Assign, who: Ops, db: Db) -> OrderPublic:
    """Assign (or reassign) to the technician you choose, overriding dispatch. A job with
    someone else goes back to open first, its booked visit released."""

    def run() -> WorkOrder:
        views.order_in_scope(db, who, order_id)
        views.technician_in_scope(db, who, body.technician_id)
        return Dispatcher(db).assign_to(
            order_id, body.technician_id, actor=who.user_id, reason=body.reason
        )

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/{order_id}/dispatch", response_model=OrderPublic, responses=REFUSED)
async def dispatch(order_id: OrderId, who: Ops, db: Db) -> OrderPublic:
    """Run dispatch for one open order now (after fixing why nobody could take it)."""

    def run() -> WorkOrder:
        views.order_in_scope(db, who, order_id)
        Dispatcher(db).run([order_id])
        return WorkOrders(db).get(order_id)

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/{order_id}/transition", response_model=OrderPublic, responses=REFUSED)
async def transition(order_id: OrderId, body: Transition, who: Ops, db: Db) -> OrderPublic:
    """Any other move the lifecycle allows: `on_hold`, `open` (resume or unassign),
    `closed`, …; the order's `allowed` lists them. A refused move says which are allowed."""
    to = body.to
    if to in OWN_ROUTE:  # a move with a route of its own (409: the request is fine)
        raise HTTPException(409, f"to make it {to.value}: {OWN_ROUTE[to]}")

    def run() -> WorkOrder:
        order = views.order_in_scope(db, who, order_id)
        if to is State.OPEN and order.state is State.PROPOSED:
            raise HTTPException(409, f"order {order_id} is proposed: approve it (/approve)")
        moved = WorkOrders(db).transition(order_id, to, actor=who.user_id, reason=body.reason)
        if to is State.OPEN:  # resumed or unassigned: back to dispatch
            Dispatcher(db).run([order_id])
            moved = WorkOrders(db).get(order_id)
        return moved

    return OrderPublic.model_validate(await asyncio.to_thread(run))


# -- the customer's visit ----------------------------------------------------------------
@router.get("/{order_id}/slots", response_model=list[SlotPublic], responses=REFUSED)
async def slots(
    order_id: OrderId, who: Booker, db: Db, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[SlotPublic]:
    """Free visit slots for the job's technician, within its deadline first."""

    def run() -> list[SlotPublic]:
        order = views.order_in_scope(db, who, order_id)
        free = Appointments(WorkOrders(db)).free_slots(order_id)[:limit]
        zone = views.timezone_of(db, order.customer_id)
        return [
            SlotPublic(start=s.start, end=s.end, before_due=s.before_due, label=s.label(zone))
            for s in free
        ]

    return await asyncio.to_thread(run)


@router.post("/{order_id}/appointment", response_model=OrderPublic, responses=REFUSED)
async def book(order_id: OrderId, body: Booking, who: Booker, db: Db) -> OrderPublic:
    """Book the visit (or move a booked one): an offered slot or another free time.
    Refused with the reason when the technician is not free then."""

    def run() -> WorkOrder:
        views.order_in_scope(db, who, order_id)
        actor = f"customer:{who.customer_id}" if who.role is Role.CUSTOMER else who.user_id
        return Appointments(WorkOrders(db)).confirm(order_id, body.start, actor=actor)

    return OrderPublic.model_validate(await asyncio.to_thread(run))


@router.post("/{order_id}/rating", response_model=OrderPublic, responses=REFUSED)
async def rate(order_id: OrderId, body: Rating, who: Customer, db: Db) -> OrderPublic:
    """Rate a completed job, 1 to 5 stars (once), and say how likely you are to recommend
    us (0-10): the job's callback. 1 or 2 stars is a complaint: a case ops follow up."""

    def run() -> WorkOrder:
        views.order_in_scope(db, who, order_id)
        return Callbacks(WorkOrders(db)).rate(
            order_id,
            body.stars,
            body.comment,
            channel="app",
            complaint=body.complaint,
            nps=body.recommend,
        )

    return OrderPublic.model_validate(await asyncio.to_thread(run))
