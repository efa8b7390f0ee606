"""The console's after-the-visit pages: the callback queue, where an agent records each
call (satisfied, not satisfied, nobody answered), and the open complaints, which ops
resolve as upheld or not. Each form posts, then comes back to its page saying what the
action did (post/redirect/get)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api import views
from api.console import OpsUser, form_action, page
from api.deps import MAX_ID, Db, OrderId
from service.callbacks import Call, CallbackPolicy, Callbacks
from service.complaints import Complaints
from service.orders import WorkOrders

router = APIRouter(prefix="/console", include_in_schema=False)
ComplaintId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/callbacks", response_class=HTMLResponse)
async def callbacks_page(
    request: Request, who: OpsUser, db: Db, said: str = "", error: str = ""
) -> HTMLResponse:
    due = await asyncio.to_thread(views.callbacks_due, db, who, 200)
    return page(
        request,
        "aftercare.html",
        who,
        title="Callbacks",
        callbacks=due,
        tries=CallbackPolicy().tries,
        said=error or said,
        error=bool(error),
    )


@router.post("/orders/{order_id}/callback")
async def record_call(
    order_id: OrderId,
    who: OpsUser,
    db: Db,
    outcome: Annotated[Literal["satisfied", "not_satisfied", "no_answer"], Form()],
    comment: Annotated[str, Form(max_length=2000)] = "",
    stars: Annotated[str, Form()] = "",
) -> RedirectResponse:
    def run() -> str:
        views.order_in_scope(db, who, order_id)
        result = Callbacks(WorkOrders(db)).call(
            order_id,
            Call(outcome),
            agent=who.user_id,
            rating=int(stars) if stars.isdigit() else None,
            comment=comment,
        )
        if result.outcome is None:
            return f"Job #{order_id}: no answer ({result.attempts} so far); call again later."
        if result.complaint is not None:
            return (
                f"Job #{order_id}: not satisfied. Complaint #{result.complaint.id} opened at "
                f"the {result.complaint.level}; the commission is held."
            )
        verdict = result.outcome.value.replace("_", " ")
        return f"Job #{order_id}: {verdict}; closed."

    return await form_action("/console/callbacks", run)


@router.get("/complaints", response_class=HTMLResponse)
async def complaints_page(
    request: Request, who: OpsUser, db: Db, said: str = "", error: str = ""
) -> HTMLResponse:
    cases = await asyncio.to_thread(views.complaints, db, who, state="open", limit=200)
    return page(
        request,
        "aftercare.html",
        who,
        title="Complaints",
        complaints=cases,
        now=datetime.now(UTC),
        said=error or said,
        error=bool(error),
    )


@router.post("/complaints/{complaint_id}/resolve")
async def resolve(
    complaint_id: ComplaintId,
    who: OpsUser,
    db: Db,
    resolution: Annotated[str, Form(max_length=4000)],
    upheld: Annotated[bool, Form()],
) -> RedirectResponse:
    def run() -> str:
        views.complaint_in_scope(db, who, complaint_id)
        case = Complaints(db).resolve(
            complaint_id, resolution=resolution, upheld=upheld, actor=who.user_id
        )
        verdict, money = ("upheld", "forfeit") if case.upheld else ("not upheld", "released")
        return f"Complaint #{case.id} resolved ({verdict}): the held commission is {money}."

    return await form_action("/console/complaints", run)
