"""Outlet settlement statements (网点结算单): what the maker owes each outlet for a period.

* **fees**: the outlet's fee per completed job, by job type (`fee_for`: the outlet's own
  fee for the problem kind, else for its class, else every outlet's), fixed at
  completion. A fee follows its job's callback like the technician's commission
  (`service.settlement`): payable once satisfied (or unreachable where the policy pays),
  held by an open complaint, forfeit when the complaint is upheld, awaiting the callback
  until then;
* **warranty claims**: the bill lines the maker pays under warranty (`service.warranty`);
* **deductions**: each job completed past its SLA, each job the outlet let lapse without
  answering, each upheld complaint against it (`OutletPolicy` says how much each).

`lines` lists every amount with its job or case and why; `statements` sums them per
outlet, and `net` is what is paid: payable fees plus claims minus deductions. Both export
as CSV.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.tables import complaints, outlet_fees, outlet_offers, outlets, work_orders
from service.callbacks import CallbackPolicy
from service.offers import EXPIRED
from service.settlement import Settlement, Status
from service.sla import problem_class
from service.warranty import claim_lines


def fee_for(conn: Connection, outlet_id: str | None, problem_kind: str) -> int:
    """Cents the maker pays `outlet_id` for a completed `problem_kind` job."""
    if outlet_id is None:
        return 0
    kinds = [problem_kind, problem_class(problem_kind)]
    rows = {
        (r.outlet_id, r.job_type): r.cents
        for r in conn.execute(
            sa.select(outlet_fees).where(
                outlet_fees.c.outlet_id.in_([outlet_id, "*"]), outlet_fees.c.job_type.in_(kinds)
            )
        )
    }
    for key in ((o, k) for o in (outlet_id, "*") for k in kinds):
        if key in rows:
            return int(rows[key])
    return 0


@dataclass(frozen=True, kw_only=True)
class OutletPolicy:
    """Cents deducted from an outlet's statement, each time."""

    sla_breach_cents: int = 5000  # a job completed past its due time
    late_answer_cents: int = 2000  # a job offered and not answered in its hours
    upheld_complaint_cents: int = 20000  # a complaint against it, upheld


@dataclass(frozen=True, slots=True)
class StatementLine:
    outlet_id: str
    kind: str  # fee | warranty | deduction
    order_id: int | None
    complaint_id: int | None
    item: str
    cents: int  # what it adds to the net: a deduction is negative; a fee not payable is 0
    amount_cents: int  # the amount itself (a held fee's amount, a deduction's size)
    status: str  # fee: payable | held | forfeit | awaiting_callback; claim; deducted
    reason: str


@dataclass(frozen=True, slots=True)
class OutletStatement:
    outlet_id: str
    region_id: str | None
    jobs: int  # jobs with a fee line in the period
    fees_payable_cents: int
    fees_held_cents: int
    fees_forfeit_cents: int
    fees_awaiting_cents: int
    warranty_cents: int
    sla_breaches: int
    late_answers: int
    upheld_complaints: int
    deductions_cents: int
    net_cents: int  # fees payable + warranty claims - deductions


class OutletStatements:
    def __init__(
        self,
        db: Database,
        policy: OutletPolicy | None = None,
        callbacks: CallbackPolicy | None = None,
    ) -> None:
        self.db, self.policy = db, policy or OutletPolicy()
        self.settlement = Settlement(db, callbacks)

    def lines(
        self, start: datetime, end: datetime, outlets_: Collection[str] | None = None
    ) -> list[StatementLine]:
        """Every amount of the period [start, end) for the outlets (all by default)."""

        def keep(outlet_id: str) -> bool:
            return outlets_ is None or outlet_id in outlets_

        out: list[StatementLine] = []
        for i in self.settlement.items(start, end):
            if keep(i.outlet_id) and i.fee_cents:
                out.append(
                    StatementLine(
                        i.outlet_id, "fee", i.order_id, None, f"{i.problem_kind} fee",
                        i.fee_cents if i.status is Status.PAYABLE else 0, i.fee_cents,
                        i.status.value, i.reason,
                    )
                )  # fmt: skip
        for c in claim_lines(self.db, start, end):
            if keep(c.outlet_id):
                out.append(
                    StatementLine(
                        c.outlet_id, "warranty", c.order_id, None, c.item, c.cents, c.cents,
                        "claim", f"under warranty: {c.problem_kind} on {c.device_id}",
                    )
                )  # fmt: skip
        out += [d for d in self._deductions(start, end) if keep(d.outlet_id)]
        return sorted(
            out, key=lambda x: (x.outlet_id, x.kind, x.order_id or 0, x.complaint_id or 0)
        )

    def _deductions(self, start: datetime, end: datetime) -> list[StatementLine]:
        p = self.policy
        wo = work_orders
        out: list[StatementLine] = []
        with self.db.engine.connect() as conn:
            late_jobs = conn.execute(
                sa.select(wo.c.id, wo.c.outlet_id, wo.c.due_at, wo.c.completed_at).where(
                    wo.c.completed_at >= start, wo.c.completed_at < end,
                    wo.c.due_at.is_not(None), wo.c.completed_at > wo.c.due_at,
                    wo.c.outlet_id.is_not(None),
                )
            ).all()  # fmt: skip
            for r in late_jobs:
                hours = (r.completed_at - r.due_at).total_seconds() / 3600
                out.append(
                    StatementLine(
                        r.outlet_id, "deduction", r.id, None, "SLA breach",
                        -p.sla_breach_cents, p.sla_breach_cents, "deducted",
                        f"completed {hours:.1f} h after its due time",
                    )
                )  # fmt: skip
            lapsed = conn.execute(
                sa.select(outlet_offers).where(
                    outlet_offers.c.state == EXPIRED,
                    outlet_offers.c.decided_at >= start, outlet_offers.c.decided_at < end,
                )
            ).all()  # fmt: skip
            for r in lapsed:
                out.append(
                    StatementLine(
                        r.outlet_id, "deduction", r.order_id, None, "late answer",
                        -p.late_answer_cents, p.late_answer_cents, "deducted",
                        f"offered {r.offered_at:%Y-%m-%d %H:%M} UTC, not answered by "
                        f"{r.due_at:%Y-%m-%d %H:%M} UTC",
                    )
                )  # fmt: skip
            upheld = conn.execute(
                sa.select(complaints).where(
                    complaints.c.upheld.is_(True), complaints.c.outlet_id.is_not(None),
                    complaints.c.resolved_at >= start, complaints.c.resolved_at < end,
                )
            ).all()  # fmt: skip
            for c in upheld:
                out.append(
                    StatementLine(
                        c.outlet_id, "deduction", c.order_id, c.id, "complaint upheld",
                        -p.upheld_complaint_cents, p.upheld_complaint_cents, "deducted",
                        f"complaint {c.id} upheld: {c.resolution}",
                    )
                )  # fmt: skip
        return out

    def statements(
        self, start: datetime, end: datetime, outlets_: Collection[str] | None = None
    ) -> list[OutletStatement]:
        lines = self.lines(start, end, outlets_)
        with self.db.engine.connect() as conn:
            region = dict(conn.execute(sa.select(outlets.c.id, outlets.c.region_id)).all())
        return summarise(lines, region)


def summarise(
    lines: Sequence[StatementLine], region: dict[str, str | None]
) -> list[OutletStatement]:
    by: dict[str, list[StatementLine]] = {}
    for line in lines:
        by.setdefault(line.outlet_id, []).append(line)
    out = []
    for outlet, ls in sorted(by.items()):
        fees = [x for x in ls if x.kind == "fee"]

        def fee(status: str, fees: list[StatementLine] = fees) -> int:
            return sum(x.amount_cents for x in fees if x.status == status)

        deductions = [x for x in ls if x.kind == "deduction"]
        out.append(
            OutletStatement(
                outlet_id=outlet,
                region_id=region.get(outlet),
                jobs=len(fees),
                fees_payable_cents=fee(Status.PAYABLE.value),
                fees_held_cents=fee(Status.HELD.value),
                fees_forfeit_cents=fee(Status.FORFEIT.value),
                fees_awaiting_cents=fee(Status.AWAITING.value),
                warranty_cents=sum(x.cents for x in ls if x.kind == "warranty"),
                sla_breaches=sum(x.item == "SLA breach" for x in deductions),
                late_answers=sum(x.item == "late answer" for x in deductions),
                upheld_complaints=sum(x.item == "complaint upheld" for x in deductions),
                deductions_cents=sum(x.amount_cents for x in deductions),
                net_cents=sum(x.cents for x in ls),
            )
        )
    return out
