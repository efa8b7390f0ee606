"""Dispatch: territory, skill, calendar, capacity, parts, butler, balanced load, in that
order; an order nobody can take says why; a decline passes it on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import work_order_events
from service.dispatch import Dispatcher
from service.errors import NotTheAssignee
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders
from service.registry import ServiceRegistry, parse_doc

MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WEEK = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def tech(
    tid: str, zones: list[str], skills: list[str], capacity: int = 5, **kw: object
) -> dict[str, object]:
    return {
        "id": tid,
        "name": tid,
        "outlet_id": "o-1",
        "timezone": "Asia/Shanghai",
        "working_hours": kw.get("hours", WEEK),
        "daily_capacity": capacity,
        "skills": [
            dict(zip(("device_type", "problem_kind"), s.split(":"), strict=True)) for s in skills
        ],
        "territories": zones,
    }


def device(did: str, dtype: str, customer: str, zone: str) -> dict[str, object]:
    return {
        "id": did,
        "device_type": dtype,
        "customer_id": customer,
        "territory_id": zone,
        "address": "1 Renmin Rd",
    }


@pytest.fixture
def world(db: Database) -> tuple[WorkOrders, Dispatcher]:
    db.upgrade()
    rows: dict[str, list[dict[str, object]]] = {
        "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai"}],
        "territories": [{"id": z, "name": z, "outlet_id": "o-1"} for z in ("t-1", "t-2", "t-3")],
        "parts": [
            {"sku": s, "name": s, "price_cents": 100}
            for s in ("AC-R32-1KG", "AC-FILTER-01", "AP-HEPA-01")
        ],
        "technicians": [
            tech("tech-ac", ["t-1"], ["air_conditioner:*"], capacity=1),
            tech("tech-ac2", ["t-1"], ["air_conditioner:*"], capacity=5),
            tech("tech-ap", ["t-1"], ["purifier:filter_replacement"]),
            tech("tech-sun", ["t-3"], ["air_conditioner:*"], hours={"sun": ["09:00", "17:00"]}),
        ],
        "customers": [
            {
                "id": "c-1",
                "name": "Li",
                "timezone": "Asia/Shanghai",
                "butler_technician_id": "tech-ac2",
            },
            {"id": "c-2", "name": "Wang", "timezone": "Asia/Shanghai"},
        ],
        "stock": [
            {"technician_id": "tech-ac", "sku": "AC-R32-1KG", "qty": 1},
            {"outlet_id": "o-1", "sku": "AC-R32-1KG", "qty": 0},
            {"outlet_id": "o-1", "sku": "AC-FILTER-01", "qty": 10},
            {"outlet_id": "o-1", "sku": "AP-HEPA-01", "qty": 0},
        ],
        "devices": [
            device("ac-1", "air_conditioner", "c-1", "t-1"),
            device("ac-2", "air_conditioner", "c-2", "t-1"),
            device("ac-3", "air_conditioner", "c-2", "t-3"),
            device("ac-9", "air_conditioner", "c-2", "t-2"),
            device("ap-1", "purifier", "c-2", "t-1"),
            device("wp-1", "water_purifier", "c-2", "t-1"),
            *(device(f"ac-{i}", "air_conditioner", "c-2", "t-1") for i in range(10, 24)),
        ],
    }
    ServiceRegistry(db).load(parse_doc(rows))
    return WorkOrders(db), Dispatcher(db)


def open_order(orders: WorkOrders, device_id: str, problem: str, priority: int = 0) -> int:
    return orders.open_or_attach(
        OrderRequest(
            device_id=device_id,
            problem_kind=problem,
            origin=Origin.OPS,
            source="ops",
            title=problem,
            priority=priority,
        ),
        now=MONDAY,
    ).order.id


def test_each_rule_that_leaves_nobody_says_so(world: tuple[WorkOrders, Dispatcher]) -> None:
    orders, dispatch = world
    cases = {
        open_order(orders, "ac-9", "inspection"): "no technician covers territory t-2",
        open_order(orders, "wp-1", "pump_failure"): "can do water_purifier/pump_failure",
        open_order(orders, "ac-3", "inspection"): "works in the horizon",  # Sundays only
        open_order(orders, "ap-1", "filter_replacement"): "no AP-HEPA-01",
    }
    report = dispatch.run(now=MONDAY)
    assert report.assigned == 0
    for order_id, why in cases.items():
        assert why in report.unassignable[order_id]
        flagged = orders.get(order_id)
        assert flagged.state is State.OPEN and why in (flagged.unassignable_reason or "")


def test_the_part_decides_who_goes_and_the_scarce_part_goes_to_the_urgent_order(
    world: tuple[WorkOrders, Dispatcher],
) -> None:
    orders, dispatch = world
    routine = open_order(orders, "ac-2", "refrigerant_leak")
    urgent = open_order(orders, "ac-10", "refrigerant_leak", priority=5)
    report = dispatch.run(now=MONDAY)
    assert orders.get(urgent).technician_id == "tech-ac"  # the only van with R32
    assert "no AC-R32-1KG" in report.unassignable[routine]
    assert [e.action for e in orders.history(urgent)][-1] == "assign"


def test_the_customers_butler_goes_when_they_qualify(world: tuple[WorkOrders, Dispatcher]) -> None:
    orders, dispatch = world
    mine = open_order(orders, "ac-1", "filter_replacement")
    dispatch.run(now=MONDAY)
    order = orders.get(mine)
    assert order.technician_id == "tech-ac2"
    assert "butler" in orders.history(mine)[-1].reason


def test_load_is_balanced_by_share_of_capacity_until_everyone_is_full(
    world: tuple[WorkOrders, Dispatcher],
) -> None:
    orders, dispatch = world
    ids = [open_order(orders, f"ac-{i}", "inspection") for i in range(10, 23)]  # 13
    report = dispatch.run(now=MONDAY)
    # capacity over the 2-day horizon: tech-ac 2, tech-ac2 10
    assert report.assigned == 12
    got = [orders.get(i).technician_id for i in ids]
    assert got.count("tech-ac") == 2 and got.count("tech-ac2") == 10
    [left] = report.unassignable.values()
    assert "all 2 skilled technicians in t-1 are full" in left


def test_a_decline_passes_the_order_on_and_first_time_success_is_recorded(
    world: tuple[WorkOrders, Dispatcher],
) -> None:
    orders, dispatch = world
    a = open_order(orders, "ac-11", "inspection")
    b = open_order(orders, "ac-12", "inspection")
    dispatch.run(now=MONDAY)
    first_a, first_b = orders.get(a).technician_id, orders.get(b).technician_id
    assert first_a and first_b
    with pytest.raises(NotTheAssignee):
        dispatch.accept(a, "tech-ap")
    dispatch.decline(a, first_a, "van in the garage", now=MONDAY)
    passed = orders.get(a)
    assert passed.state is State.ASSIGNED and passed.technician_id not in (None, first_a)
    assert passed.declined_by == [first_a]
    assert dispatch.accept(a, passed.technician_id).first_offer_accepted is False  # type: ignore[arg-type]
    assert dispatch.accept(b, first_b).first_offer_accepted is True
    actions = [e.action for e in orders.history(a)]
    assert actions == ["open", "assign", "decline", "assign", "accept"]


def test_whoever_declined_is_never_offered_the_order_again(
    world: tuple[WorkOrders, Dispatcher],
) -> None:
    orders, dispatch = world
    a = open_order(orders, "ac-11", "inspection")
    dispatch.run(now=MONDAY)
    first = orders.get(a).technician_id
    assert first is not None
    report = dispatch.decline(a, first, "van in the garage", now=MONDAY)
    second = orders.get(a).technician_id
    assert second is not None and second != first
    report = dispatch.decline(a, second, "sick", now=MONDAY)
    assert "every skilled technician in t-1 declined it" in report.unassignable[a]
    assert orders.get(a).state is State.OPEN


def test_two_dispatchers_at_once_assign_each_order_once(
    world: tuple[WorkOrders, Dispatcher], db: Database
) -> None:
    orders, _ = world
    ids = [open_order(orders, f"ac-{i}", "inspection") for i in range(10, 20)]
    errors: list[Exception] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            Dispatcher(db).run(now=MONDAY)
        except Exception as exc:  # the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.engine.connect() as conn:
        assigns = conn.execute(
            sa.select(work_order_events.c.order_id, sa.func.count())
            .where(work_order_events.c.action == "assign")
            .group_by(work_order_events.c.order_id)
        ).all()
    assert sorted(assigns) == [(i, 1) for i in ids]
    assert all(orders.get(i).state is State.ASSIGNED for i in ids)
