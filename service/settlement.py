"""Callback (回访) and settlement (结算).

The customer rates a completed job 1–5; that closes the order. The technician's
commission for it (fixed at completion, from a table per problem) becomes payable only
then, or after `grace_days` without a rating (the order is closed as unrated). The
settlement report sums what became payable in a period, per outlet and technician, with
what is still waiting on a rating.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import sqlalchemy as sa

from db.tables import callbacks, work_orders
from service.errors import ServiceError
from service.lifecycle import State
from service.orders import WorkOrder, WorkOrders
from service.sla import problem_class

DEFAULT_COMMISSIONS: Mapping[str, int] = MappingProxyType(
    {"filter": 3000, "fault": 8000, "service": 4000}  # cents, by problem class
)


class RatingRefused(ServiceError):
    pass


@dataclass(frozen=True, kw_only=True)
class CommissionTable:
    """Cents per job: by problem kind when listed, else by problem class."""

    by_kind: Mapping[str, int] = field(default_factory=dict)
    by_class: Mapping[str, int] = field(default_factory=lambda: DEFAULT_COMMISSIONS)

    def for_problem(self, problem_kind: str) -> int:
        if problem_kind in self.by_kind:
            return self.by_kind[problem_kind]
        return self.by_class.get(problem_class(problem_kind), 0)


@dataclass(frozen=True, slots=True)
class SettlementRow:
    outlet_id: str
    technician_id: str
    jobs_payable: int
    payable_cents: int
    rated: int
    unrated: int  # payable after the grace period without a rating
    mean_rating: float | None
    awaiting_rating: int  # completed, not yet payable
    awaiting_cents: int


class Callbacks:
    def __init__(self, orders: WorkOrders, *, grace_days: int = 7) -> None:
        self.orders, self.grace = orders, timedelta(days=grace_days)

    def rate(
        self,
        order_id: int,
        rating: int,
        comment: str = "",
        *,
        channel: str = "app",
        complaint: bool | None = None,
        now: datetime | None = None,
    ) -> WorkOrder:
        """Record the customer's rating and close the order. A rating of 1 or 2 counts as a
        complaint unless `complaint` says otherwise (a complaint can come with any rating)."""
        if not 1 <= rating <= 5:
            raise RatingRefused(f"a rating is 1 to 5 stars, not {rating}")
        now = now or datetime.now(UTC)
        with self.orders.db.engine.begin() as conn:
            order = self.orders.get_in(conn, order_id)
            if order.state is not State.COMPLETED:
                already = conn.execute(
                    sa.select(callbacks.c.rating).where(callbacks.c.order_id == order_id)
                ).scalar_one_or_none()
                why = (
                    f"it was rated {already} already"
                    if already is not None
                    else f"it is {order.state.value}, and only a completed job is rated"
                )
                raise RatingRefused(f"work order {order_id} cannot be rated: {why}")
            conn.execute(
                callbacks.insert().values(
                    order_id=order_id,
                    rating=rating,
                    comment=comment,
                    channel=channel,
                    at=now,
                    complaint=rating <= 2 if complaint is None else complaint,
                )
            )
            return self.orders.transition_in(
                conn,
                order_id,
                State.CLOSED,
                actor=f"customer:{order.customer_id}",
                reason=f"rated {rating}/5" + (f": {comment}" if comment else ""),
                expect=State.COMPLETED,
                now=now,
            )

    def close_unrated(self, now: datetime | None = None) -> list[int]:
        """Close jobs completed `grace_days` ago and never rated: their commission is due."""
        now = now or datetime.now(UTC)
        with self.orders.db.engine.connect() as conn:
            ids = list(
                conn.execute(
                    sa.select(work_orders.c.id).where(
                        work_orders.c.state == State.COMPLETED.value,
                        work_orders.c.completed_at <= now - self.grace,
                    )
                ).scalars()
            )
        for order_id in ids:
            self.orders.transition(
                order_id,
                State.CLOSED,
                actor="system",
                reason=f"no rating in {self.grace.days} days",
                expect=State.COMPLETED,
                now=now,
            )
        return ids

    def settlement(self, start: datetime, end: datetime) -> list[SettlementRow]:
        """Per outlet and technician: commission that became payable in [start, end) (when
        rated, or at completion + grace without a rating), and what still waits."""
        q = (
            sa.select(
                work_orders.c.outlet_id,
                work_orders.c.technician_id,
                work_orders.c.completed_at,
                work_orders.c.commission_cents,
                callbacks.c.rating,
                callbacks.c.at.label("rated_at"),
            )
            .select_from(work_orders.outerjoin(callbacks, callbacks.c.order_id == work_orders.c.id))
            .where(
                work_orders.c.completed_at.is_not(None),
                work_orders.c.completed_at < end,
                work_orders.c.technician_id.is_not(None),
            )
        )
        acc: dict[tuple[str, str], _Acc] = {}
        with self.orders.db.engine.connect() as conn:
            for r in conn.execute(q):
                a = acc.setdefault((r.outlet_id or "-", r.technician_id), _Acc())
                cents = r.commission_cents or 0
                payable_at = r.rated_at if r.rating is not None else r.completed_at + self.grace
                if payable_at >= end:
                    a.waiting += 1
                    a.waiting_cents += cents
                elif payable_at >= start:
                    a.jobs += 1
                    a.cents += cents
                    if r.rating is None:
                        a.unrated += 1
                    else:
                        a.ratings.append(r.rating)
        return [
            SettlementRow(
                outlet_id=outlet,
                technician_id=tech,
                jobs_payable=a.jobs,
                payable_cents=a.cents,
                rated=len(a.ratings),
                unrated=a.unrated,
                mean_rating=round(sum(a.ratings) / len(a.ratings), 2) if a.ratings else None,
                awaiting_rating=a.waiting,
                awaiting_cents=a.waiting_cents,
            )
            for (outlet, tech), a in sorted(acc.items())
        ]


@dataclass
class _Acc:
    jobs: int = 0
    cents: int = 0
    unrated: int = 0
    ratings: list[int] = field(default_factory=list)
    waiting: int = 0
    waiting_cents: int = 0


def settlement_csv(rows: list[SettlementRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "outlet",
            "technician",
            "jobs_payable",
            "payable",
            "rated",
            "unrated",
            "mean_rating",
            "awaiting_rating",
            "awaiting",
        ]
    )
    for r in rows:
        w.writerow(
            [
                r.outlet_id,
                r.technician_id,
                r.jobs_payable,
                f"{r.payable_cents / 100:.2f}",
                r.rated,
                r.unrated,
                "" if r.mean_rating is None else r.mean_rating,
                r.awaiting_rating,
                f"{r.awaiting_cents / 100:.2f}",
            ]
        )
    return out.getvalue()
