"""Settlement (结算): what each technician is owed for a period, and why an item is not.

The technician's commission for a job is fixed at completion (from a table per problem)
and released by the job's callback (`service.callbacks`):
* **payable** when the callback found the customer satisfied, or unreachable where the
  policy pays for that; payable on the callback's date;
* **held** while a not-satisfied callback's complaint is open, or where the policy holds
  an unreachable customer's job;
* **released** (payable on the resolution's date) when the complaint is resolved as not
  upheld, **forfeit** when it is upheld;
* **awaiting callback** until the callback has an outcome.

`items` lists every job with its status and the reason; `statement` sums them per outlet
and technician; both export as CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from db.database import Database
from db.tables import callback_attempts, callbacks, complaints, work_orders
from service.callbacks import CallbackPolicy, Outcome
from service.sla import problem_class

DEFAULT_COMMISSIONS: Mapping[str, int] = MappingProxyType(
    {"filter": 3000, "fault": 8000, "service": 4000}  # cents, by problem class
)


@dataclass(frozen=True, kw_only=True)
class CommissionTable:
    """Cents per job: by problem kind when listed, else by problem class."""

    by_kind: Mapping[str, int] = field(default_factory=dict)
    by_class: Mapping[str, int] = field(default_factory=lambda: DEFAULT_COMMISSIONS)

    def for_problem(self, problem_kind: str) -> int:
        if problem_kind in self.by_kind:
            return self.by_kind[problem_kind]
        return self.by_class.get(problem_class(problem_kind), 0)


class Status(StrEnum):
    PAYABLE = "payable"
    HELD = "held"
    FORFEIT = "forfeit"
    AWAITING = "awaiting_callback"


@dataclass(frozen=True, slots=True)
class SettlementItem:
    order_id: int
    outlet_id: str
    technician_id: str
    problem_kind: str
    completed_at: datetime
    cents: int
    status: Status
    reason: str
    decided_at: datetime | None  # when it became payable or forfeit
    rating: int | None
    callback: str | None  # its outcome: satisfied, not_satisfied, unreachable; None: none yet
    fee_cents: int = 0  # the outlet's fee for the job, which follows the same callback


@dataclass(frozen=True, slots=True)
class SettlementRow:
    outlet_id: str
    technician_id: str
    jobs_payable: int
    payable_cents: int
    satisfied: int
    unreachable: int  # payable without reaching the customer (the policy's choice)
    released: int  # held by a complaint found not upheld
    mean_rating: float | None
    held: int
    held_cents: int
    forfeit: int
    forfeit_cents: int
    awaiting_callback: int
    awaiting_cents: int


class Settlement:
    def __init__(self, db: Database, policy: CallbackPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or CallbackPolicy()

    def items(self, start: datetime, end: datetime) -> list[SettlementItem]:
        """Every job completed before `end` whose money moved in [start, end) (payable or
        forfeit then), or that is held or awaiting its callback at `end`."""
        latest = (
            sa.select(complaints.c.order_id, sa.func.max(complaints.c.id).label("id"))
            .where(complaints.c.order_id.is_not(None), complaints.c.opened_at < end)
            .group_by(complaints.c.order_id)
            .subquery()
        )
        tries = (
            sa.select(callback_attempts.c.order_id, sa.func.count().label("n"))
            .where(callback_attempts.c.at < end)
            .group_by(callback_attempts.c.order_id)
            .subquery()
        )
        q = (
            sa.select(
                work_orders.c.id,
                work_orders.c.outlet_id,
                work_orders.c.technician_id,
                work_orders.c.problem_kind,
                work_orders.c.completed_at,
                work_orders.c.commission_cents,
                work_orders.c.outlet_fee_cents,
                callbacks.c.outcome,
                callbacks.c.rating,
                callbacks.c.at.label("called_at"),
                complaints.c.id.label("complaint_id"),
                complaints.c.level,
                complaints.c.resolved_at,
                complaints.c.upheld,
                complaints.c.resolution,
                tries.c.n.label("tries"),
            )
            .select_from(
                work_orders.outerjoin(
                    callbacks,
                    (callbacks.c.order_id == work_orders.c.id) & (callbacks.c.at < end),
                )
                .outerjoin(latest, latest.c.order_id == work_orders.c.id)
                .outerjoin(complaints, complaints.c.id == latest.c.id)
                .outerjoin(tries, tries.c.order_id == work_orders.c.id)
            )
            .where(
                work_orders.c.completed_at.is_not(None),
                work_orders.c.completed_at < end,
                work_orders.c.technician_id.is_not(None),
            )
            .order_by(work_orders.c.outlet_id, work_orders.c.technician_id, work_orders.c.id)
        )
        out = []
        with self.db.engine.connect() as conn:
            for r in conn.execute(q):
                status, reason, decided = self._judge(r, end)
                if status in (Status.PAYABLE, Status.FORFEIT) and (
                    decided is None or decided < start
                ):
                    continue  # settled in an earlier period
                out.append(
                    SettlementItem(
                        order_id=r.id,
                        outlet_id=r.outlet_id or "-",
                        technician_id=r.technician_id,
                        problem_kind=r.problem_kind,
                        completed_at=r.completed_at,
                        cents=r.commission_cents or 0,
                        status=status,
                        reason=reason,
                        decided_at=decided,
                        rating=r.rating,
                        callback=r.outcome,
                        fee_cents=r.outlet_fee_cents or 0,
                    )
                )
        return out

    def _judge(self, r: Any, end: datetime) -> tuple[Status, str, datetime | None]:
        if r.outcome is None:
            tries = r.tries or 0
            return (
                Status.AWAITING,
                (
                    f"no callback yet ({tries} unanswered call{'s' * (tries != 1)})"
                    if tries
                    else "no callback yet"
                ),
                None,
            )
        said = f"rated {r.rating}/5" if r.rating is not None else ""
        if r.outcome == Outcome.SATISFIED.value:
            return (
                Status.PAYABLE,
                "callback: satisfied" + (f", {said}" if said else ""),
                r.called_at,
            )
        if r.outcome == Outcome.UNREACHABLE.value:
            why = f"customer unreachable after {self.policy.tries} calls"
            if self.policy.unreachable_pays:
                return Status.PAYABLE, f"{why} (policy: pay)", r.called_at
            return Status.HELD, f"{why} (policy: hold)", None
        case = f"complaint {r.complaint_id}" if r.complaint_id is not None else "a complaint"
        if r.resolved_at is not None and r.resolved_at < end:
            if r.upheld:
                return Status.FORFEIT, f"{case} upheld: {r.resolution}", r.resolved_at
            return Status.PAYABLE, f"{case} not upheld: {r.resolution}", r.resolved_at
        level = f" at {r.level} level" if r.level else ""
        return Status.HELD, f"callback: not satisfied; {case} open{level}", None

    def statement(self, start: datetime, end: datetime) -> list[SettlementRow]:
        """Per outlet and technician: what became payable in [start, end), what is held,
        forfeit and still awaiting its callback."""
        return summarise(self.items(start, end))


def summarise(items: Sequence[SettlementItem]) -> list[SettlementRow]:
    acc: dict[tuple[str, str], _Acc] = {}
    for i in items:
        a = acc.setdefault((i.outlet_id, i.technician_id), _Acc())
        if i.status is Status.PAYABLE:
            a.jobs += 1
            a.cents += i.cents
            if i.callback == Outcome.SATISFIED.value:
                a.satisfied += 1
            elif i.callback == Outcome.UNREACHABLE.value:
                a.unreachable += 1
            else:  # held by a complaint found not upheld
                a.released += 1
            if i.rating is not None:
                a.ratings.append(i.rating)
        elif i.status is Status.HELD:
            a.held += 1
            a.held_cents += i.cents
        elif i.status is Status.FORFEIT:
            a.forfeit += 1
            a.forfeit_cents += i.cents
        else:
            a.waiting += 1
            a.waiting_cents += i.cents
    return [
        SettlementRow(
            outlet_id=outlet,
            technician_id=tech,
            jobs_payable=a.jobs,
            payable_cents=a.cents,
            satisfied=a.satisfied,
            unreachable=a.unreachable,
            released=a.released,
            mean_rating=round(sum(a.ratings) / len(a.ratings), 2) if a.ratings else None,
            held=a.held,
            held_cents=a.held_cents,
            forfeit=a.forfeit,
            forfeit_cents=a.forfeit_cents,
            awaiting_callback=a.waiting,
            awaiting_cents=a.waiting_cents,
        )
        for (outlet, tech), a in sorted(acc.items())
    ]


@dataclass
class _Acc:
    jobs: int = 0
    cents: int = 0
    satisfied: int = 0
    unreachable: int = 0
    released: int = 0
    ratings: list[int] = field(default_factory=list)
    held: int = 0
    held_cents: int = 0
    forfeit: int = 0
    forfeit_cents: int = 0
    waiting: int = 0
    waiting_cents: int = 0


def _money(cents: int) -> str:
    return f"{cents / 100:.2f}"


def settlement_csv(rows: Sequence[SettlementRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "outlet",
            "technician",
            "jobs_payable",
            "payable",
            "satisfied",
            "unreachable",
            "released",
            "mean_rating",
            "held_jobs",
            "held",
            "forfeit_jobs",
            "forfeit",
            "awaiting_callback",
            "awaiting",
        ]
    )
    for r in rows:
        w.writerow(
            [
                r.outlet_id,
                r.technician_id,
                r.jobs_payable,
                _money(r.payable_cents),
                r.satisfied,
                r.unreachable,
                r.released,
                "" if r.mean_rating is None else r.mean_rating,
                r.held,
                _money(r.held_cents),
                r.forfeit,
                _money(r.forfeit_cents),
                r.awaiting_callback,
                _money(r.awaiting_cents),
            ]
        )
    return out.getvalue()


def items_csv(items: Sequence[SettlementItem]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        ["order", "outlet", "technician", "problem", "completed_at", "commission", "status",
         "decided_at", "reason"]
    )  # fmt: skip
    for i in items:
        w.writerow(
            [
                i.order_id,
                i.outlet_id,
                i.technician_id,
                i.problem_kind,
                i.completed_at.isoformat(),
                _money(i.cents),
                i.status.value,
                "" if i.decided_at is None else i.decided_at.isoformat(),
                i.reason,
            ]
        )
    return out.getvalue()
