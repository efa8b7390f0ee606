"""The callback (回访) after every completed job, and what it decides.

A completed job waits in the callback queue until the callback has an outcome:
* **satisfied** or **not satisfied**, from the customer's rating in the app (3 stars or
  more is satisfied, unless they flag a complaint) or from an agent's call;
* **unreachable**, once agents have called `CallbackPolicy.tries` times and reached
  nobody (every try is recorded).

The outcome closes the job and decides the money (`service.settlement`): satisfied makes
the technician's commission payable; unreachable makes it payable or holds it, as the
policy says; not satisfied holds it and opens a complaint case (`service.complaints`),
whose resolution forfeits or releases it. Silence pays nothing: a job nobody rated stays
in the queue for an agent. The customer may also answer the callback's last question,
how likely they are to recommend us (0–10), which the KPIs report as NPS.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.tables import callback_attempts, callbacks, customers, work_orders
from service.complaints import Complaint, Complaints, Source
from service.errors import ServiceError
from service.lifecycle import State
from service.orders import WorkOrder, WorkOrders


class Outcome(StrEnum):
    SATISFIED = "satisfied"
    NOT_SATISFIED = "not_satisfied"
    UNREACHABLE = "unreachable"


class Call(StrEnum):
    """What an agent's call found."""

    SATISFIED = "satisfied"
    NOT_SATISFIED = "not_satisfied"
    NO_ANSWER = "no_answer"


class RatingRefused(ServiceError):
    pass


class NoCallbackDue(RatingRefused):
    """The job is not waiting for a callback: not completed yet, or its callback is done."""


@dataclass(frozen=True, kw_only=True)
class CallbackPolicy:
    tries: int = 3  # calls that reach nobody before the customer counts as unreachable
    unreachable_pays: bool = True  # an unreachable customer does not hold the money
    satisfied_from: int = 3  # stars from which an app rating is satisfied


@dataclass(frozen=True, slots=True)
class CallbackResult:
    order: WorkOrder
    outcome: Outcome | None  # None: a call that reached nobody, tries left
    attempts: int  # calls that reached nobody so far
    complaint: Complaint | None  # opened (or added to) by a not-satisfied outcome


@dataclass(frozen=True, slots=True)
class CallbackDue:
    """A completed job waiting for its callback."""

    order_id: int
    device_id: str
    problem_kind: str
    customer_id: str | None
    customer_name: str | None
    phone: str | None
    outlet_id: str | None
    technician_id: str | None
    completed_at: datetime
    attempts: int
    last_attempt_at: datetime | None


class Callbacks:
    def __init__(
        self,
        orders: WorkOrders,
        *,
        policy: CallbackPolicy | None = None,
        complaints: Complaints | None = None,
    ) -> None:
        self.orders = orders
        self.policy = policy or CallbackPolicy()
        self.complaints = complaints or Complaints(orders.db)

    def rate(
        self,
        order_id: int,
        rating: int,
        comment: str = "",
        *,
        channel: str = "app",
        complaint: bool | None = None,
        nps: int | None = None,
        now: datetime | None = None,
    ) -> WorkOrder:
        """The customer's own rating, 1–5 stars: the callback's answer. Fewer than
        `satisfied_from` stars is a complaint unless `complaint` says otherwise (a
        complaint can come with any rating)."""
        if not 1 <= rating <= 5:
            raise RatingRefused(f"a rating is 1 to 5 stars, not {rating}")
        unhappy = rating < self.policy.satisfied_from if complaint is None else complaint
        outcome = Outcome.NOT_SATISFIED if unhappy else Outcome.SATISFIED
        return self._conclude(
            order_id,
            outcome,
            rating=rating,
            comment=comment,
            channel=channel,
            agent=None,
            nps=nps,
            now=now,
        ).order

    def call(
        self,
        order_id: int,
        found: Call,
        *,
        agent: str,
        rating: int | None = None,
        comment: str = "",
        nps: int | None = None,
        now: datetime | None = None,
    ) -> CallbackResult:
        """Record an agent's callback: the customer's answer, or a call nobody took."""
        if rating is not None and not 1 <= rating <= 5:
            raise RatingRefused(f"a rating is 1 to 5 stars, not {rating}")
        now = now or datetime.now(UTC)
        if found is not Call.NO_ANSWER:
            return self._conclude(
                order_id,
                Outcome(found.value),
                rating=rating,
                comment=comment,
                channel="phone",
                agent=agent,
                nps=nps,
                now=now,
            )
        with self.orders.db.engine.begin() as conn:
            order = self._completed(conn, order_id)
            conn.execute(
                callback_attempts.insert().values(
                    order_id=order_id, at=now, agent=agent, note=comment
                )
            )
            attempts = self._attempts(conn, order_id)
            if attempts < self.policy.tries:
                return CallbackResult(order, None, attempts, None)
        return self._conclude(
            order_id,
            Outcome.UNREACHABLE,
            rating=None,
            comment=f"no answer to {attempts} calls",
            channel="phone",
            agent=agent,
            nps=None,
            now=now,
        )

    def due(self, *, outlets: Collection[str] | None = None, limit: int = 100) -> list[CallbackDue]:
        """The callback queue: completed jobs without an outcome, the longest waiting
        first, with the tries made so far."""
        tries = (
            sa.select(
                callback_attempts.c.order_id,
                sa.func.count().label("n"),
                sa.func.max(callback_attempts.c.at).label("last"),
            )
            .group_by(callback_attempts.c.order_id)
            .subquery()
        )
        q = (
            sa.select(
                work_orders.c.id,
                work_orders.c.device_id,
                work_orders.c.problem_kind,
                work_orders.c.customer_id,
                customers.c.name,
                customers.c.phone,
                work_orders.c.outlet_id,
                work_orders.c.technician_id,
                work_orders.c.completed_at,
                tries.c.n,
                tries.c.last,
            )
            .select_from(
                work_orders.outerjoin(tries, tries.c.order_id == work_orders.c.id).outerjoin(
                    customers, customers.c.id == work_orders.c.customer_id
                )
            )
            .where(work_orders.c.state == State.COMPLETED.value)
            .order_by(work_orders.c.completed_at, work_orders.c.id)
            .limit(limit)
        )
        if outlets is not None:  # the caller's outlets only
            q = q.where(work_orders.c.outlet_id.in_(sorted(outlets)))
        with self.orders.db.engine.connect() as conn:
            return [
                CallbackDue(
                    order_id=r.id,
                    device_id=r.device_id,
                    problem_kind=r.problem_kind,
                    customer_id=r.customer_id,
                    customer_name=r.name,
                    phone=r.phone,
                    outlet_id=r.outlet_id,
                    technician_id=r.technician_id,
                    completed_at=r.completed_at,
                    attempts=r.n or 0,
                    last_attempt_at=r.last,
                )
                for r in conn.execute(q)
            ]

    def _conclude(
        self,
        order_id: int,
        outcome: Outcome,
        *,
        rating: int | None,
        comment: str,
        channel: str,
        agent: str | None,
        nps: int | None,
        now: datetime | None,
    ) -> CallbackResult:
        if nps is not None and not 0 <= nps <= 10:
            raise RatingRefused(f"'would you recommend us' is 0 to 10, not {nps}")
        now = now or datetime.now(UTC)
        try:
            with self.orders.db.engine.begin() as conn:
                order = self._completed(conn, order_id)
                conn.execute(
                    callbacks.insert().values(
                        order_id=order_id,
                        rating=rating,
                        comment=comment,
                        channel=channel,
                        at=now,
                        complaint=outcome is Outcome.NOT_SATISFIED,
                        outcome=outcome.value,
                        agent=agent,
                        nps=nps,
                    )
                )
                actor = agent or f"customer:{order.customer_id}"
                said = (
                    f"rated {rating}/5" if rating is not None else outcome.value.replace("_", " ")
                )
                closed = self.orders.transition_in(
                    conn,
                    order_id,
                    State.CLOSED,
                    actor=actor,
                    reason=f"callback: {said}" + (f": {comment}" if comment else ""),
                    expect=State.COMPLETED,
                    now=now,
                )
                case = None
                if outcome is Outcome.NOT_SATISFIED:
                    case = self.complaints.open_in(
                        conn,
                        source=Source.CALLBACK if agent else Source.RATING,
                        description=comment or said,
                        actor=actor,
                        order_id=order_id,
                        now=now,
                    )
                return CallbackResult(closed, outcome, self._attempts(conn, order_id), case)
        except sa.exc.IntegrityError:  # a second answer at the same moment: the first holds
            with self.orders.db.engine.connect() as conn:
                self._completed(conn, order_id)  # says what answered it
            raise

    def _completed(self, conn: Connection, order_id: int) -> WorkOrder:
        order = self.orders.get_in(conn, order_id)
        if order.state is not State.COMPLETED:
            done = conn.execute(
                sa.select(callbacks.c.outcome, callbacks.c.rating).where(
                    callbacks.c.order_id == order_id
                )
            ).one_or_none()
            if done is not None:
                said = f"rated {done.rating}/5" if done.rating else done.outcome.replace("_", " ")
                why = f"its callback is done ({said})"
            else:
                why = f"it is {order.state.value}, and only a completed job has a callback"
            raise NoCallbackDue(f"work order {order_id} cannot be rated or called back: {why}")
        return order

    @staticmethod
    def _attempts(conn: Connection, order_id: int) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(callback_attempts.c.order_id == order_id)
            ).scalar_one()
        )
