"""Moving test orders along the loop, at given times."""

from __future__ import annotations

from datetime import datetime

from db.database import Database
from service.dispatch import Dispatcher
from service.lifecycle import Origin
from service.orders import OrderRequest, WorkOrders


def opened(
    db: Database,
    device: str,
    problem: str,
    now: datetime,
    *,
    origin: Origin = Origin.APP,
    due_at: datetime | None = None,
) -> int:
    request = OrderRequest(
        device_id=device,
        problem_kind=problem,
        origin=origin,
        source="test",
        title=f"{problem} on {device}",
        due_at=due_at,
    )
    return WorkOrders(db).open_or_attach(request, now=now).order.id


def accepted(db: Database, device: str, problem: str, now: datetime, **kw: object) -> int:
    """An order opened, dispatched (to tech-1, the only technician) and accepted."""
    order_id = opened(db, device, problem, now, **kw)  # type: ignore[arg-type]
    dispatcher = Dispatcher(db)
    report = dispatcher.run([order_id], now=now)
    assert report.assigned == 1, report.unassignable
    dispatcher.accept(order_id, "tech-1", now=now)
    return order_id


def repaired(
    db: Database, device: str, at: datetime, found: str = "motor_wear", outcome: str = "fixed"
) -> int:
    """A job on `device` closed at `at` with the technician's verdict (a failure when
    fixed and `found` is a fault): the rows the quality analytics read. Its order id."""
    from db.tables import service_labels, work_orders

    with db.engine.begin() as conn:
        order_id = int(
            conn.execute(
                work_orders.insert().values(
                    device_id=device, device_type="purifier", problem_kind=found,
                    origin="auto", state="closed", version=1, title="t", description="d",
                    priority=1, evidence_count=0, created_at=at, updated_at=at,
                )
            ).inserted_primary_key[0]
        )  # fmt: skip
        conn.execute(
            service_labels.insert().values(
                order_id=order_id, device_id=device, device_type="purifier",
                problem_kind=found, outcome=outcome, at=at,
            )
        )  # fmt: skip
    return order_id
