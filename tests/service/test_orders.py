"""Work orders: one live order per problem (the database decides), an explicit lifecycle
with an audit trail, and compare-and-set changes that make racing writers safe."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from db.database import Database
from db.errors import NotFound
from service.errors import ConcurrentChange, InvalidTransition
from service.lifecycle import LIVE, TERMINAL, TRANSITIONS, Origin, State
from service.orders import Opened, OrderRequest, WorkOrders
from service.registry import ServiceRegistry, parse_doc

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def small_registry() -> dict[str, list[dict[str, object]]]:
    rows: dict[str, list[dict[str, object]]] = {
        "outlets": [{"id": "o-sh", "name": "Shanghai Xuhui", "timezone": "Asia/Shanghai"}],
        "territories": [{"id": "t-xh", "name": "Xuhui", "outlet_id": "o-sh"}],
        "customers": [
            {"id": "c-1", "name": "Li Wei", "tier": "vip", "timezone": "Asia/Shanghai"},
        ],
        "technicians": [
            {
                "id": "tech-1",
                "name": "Zhang",
                "outlet_id": "o-sh",
                "timezone": "Asia/Shanghai",
                "working_hours": {"mon": ["08:00", "18:00"]},
                "skills": [{"device_type": "air_conditioner"}],
                "territories": ["t-xh"],
            }
        ],
        "devices": [
            {
                "id": f"ac-{i}",
                "device_type": "air_conditioner",
                "customer_id": "c-1",
                "territory_id": "t-xh",
                "address": "88 Tianyaoqiao Rd",
            }
            for i in range(3)
        ],
    }
    return rows


@pytest.fixture
def orders(db: Database) -> WorkOrders:
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(small_registry()))
    return WorkOrders(db)


def request(device: str = "ac-0", problem: str = "refrigerant_leak", **kw: object) -> OrderRequest:
    base: dict[str, object] = {
        "device_id": device,
        "problem_kind": problem,
        "origin": Origin.AUTO,
        "source": "rule:suction_pressure_low",
        "title": "Refrigerant leak suspected",
        "evidence": {"suction_kpa": 610},
    }
    return OrderRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_an_auto_order_is_proposed_and_carries_its_place_and_evidence(orders: WorkOrders) -> None:
    opened = orders.open_or_attach(request(), now=T0)
    o = opened.order
    assert opened.created and o.state is State.PROPOSED and o.origin is Origin.AUTO
    assert (o.customer_id, o.territory_id, o.outlet_id) == ("c-1", "t-xh", "o-sh")
    assert o.device_type == "air_conditioner" and o.evidence_count == 1
    [event] = orders.history(o.id)
    assert (event.action, event.from_state, event.to_state) == ("open", None, State.PROPOSED)
    app = orders.open_or_attach(request(device="ac-1", origin=Origin.APP, source="app"))
    assert app.order.state is State.OPEN  # a customer's own request needs no review


def test_a_second_request_for_the_same_problem_attaches_as_evidence(orders: WorkOrders) -> None:
    first = orders.open_or_attach(request(), now=T0).order
    again = orders.open_or_attach(request(origin=Origin.PHONE, source="call centre"))
    assert not again.created and again.order.id == first.id
    assert again.order.evidence_count == 2
    assert [e["source"] for e in orders.evidence(first.id)] == [
        "rule:suction_pressure_low",
        "call centre",
    ]
    other = orders.open_or_attach(request(problem="filter_replacement"))
    assert other.created and other.order.id != first.id  # another problem, another order


def test_once_an_order_is_finished_the_same_problem_opens_a_new_one(orders: WorkOrders) -> None:
    first = orders.open_or_attach(request()).order
    orders.transition(first.id, State.REJECTED, actor="ops:anna", reason="sensor glitch")
    second = orders.open_or_attach(request())
    assert second.created and second.order.id != first.id


def race(n: int, fn: Callable[[int], object]) -> list[object]:
    """Run fn(0..n-1) in n threads released at once; results or the exceptions raised."""
    outcomes: list[object] = []
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        try:
            outcomes.append(fn(i))
        except Exception as exc:  # the test looks at whatever came out
            outcomes.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_writers_racing_to_open_one_problem_create_one_order(orders: WorkOrders) -> None:
    results = race(8, lambda i: orders.open_or_attach(request(source=f"detector-{i}")))
    assert all(isinstance(r, Opened) for r in results), results
    opened = [r for r in results if isinstance(r, Opened)]
    created = [r for r in opened if r.created]
    assert len(created) == 1
    assert {r.order.id for r in opened} == {created[0].order.id}
    assert orders.get(created[0].order.id).evidence_count == 8


def walk(orders: WorkOrders, order_id: int, path: list[State]) -> None:
    for to in path:
        orders.transition(order_id, to, actor="test")


def test_the_whole_loop_leaves_an_audit_trail(orders: WorkOrders) -> None:
    o = orders.open_or_attach(request()).order
    orders.transition(o.id, State.OPEN, actor="ops:anna", reason="telemetry is convincing")
    orders.transition(o.id, State.ASSIGNED, actor="dispatch", technician_id="tech-1")
    orders.transition(o.id, State.ACCEPTED, actor="tech-1")
    start = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    orders.transition(o.id, State.SCHEDULED, actor="c-1", scheduled_start=start)
    orders.transition(o.id, State.SCHEDULED, actor="c-1", reason="customer asked for later")
    walk(orders, o.id, [State.IN_PROGRESS, State.COMPLETED, State.CLOSED])
    final = orders.get(o.id)
    assert final.state is State.CLOSED and final.closed_at is not None
    assert final.technician_id == "tech-1" and final.scheduled_start == start
    assert final.version == 9
    trail = orders.history(o.id)
    assert [e.action for e in trail] == [
        "open",
        "approve",
        "assign",
        "accept",
        "schedule",
        "reschedule",
        "start",
        "complete",
        "close",
    ]
    assert trail[1].actor == "ops:anna" and trail[1].reason == "telemetry is convincing"
    assert trail[2].data == {"technician_id": "tech-1"}
    assert [(e.from_state, e.to_state) for e in trail[1:3]] == [
        (State.PROPOSED, State.OPEN),
        (State.OPEN, State.ASSIGNED),
    ]


# a path from `proposed` to each state, through allowed moves
REACH: dict[State, list[State]] = {
    State.PROPOSED: [],
    State.OPEN: [State.OPEN],
    State.ASSIGNED: [State.OPEN, State.ASSIGNED],
    State.ACCEPTED: [State.OPEN, State.ASSIGNED, State.ACCEPTED],
    State.SCHEDULED: [State.OPEN, State.ASSIGNED, State.ACCEPTED, State.SCHEDULED],
    State.IN_PROGRESS: [
        State.OPEN,
        State.ASSIGNED,
        State.ACCEPTED,
        State.SCHEDULED,
        State.IN_PROGRESS,
    ],
    State.ON_HOLD: [State.OPEN, State.ON_HOLD],
    State.COMPLETED: [
        State.OPEN,
        State.ASSIGNED,
        State.ACCEPTED,
        State.SCHEDULED,
        State.IN_PROGRESS,
        State.COMPLETED,
    ],
    State.CLOSED: [
        State.OPEN,
        State.ASSIGNED,
        State.ACCEPTED,
        State.SCHEDULED,
        State.IN_PROGRESS,
        State.COMPLETED,
        State.CLOSED,
    ],
    State.REJECTED: [State.REJECTED],
    State.CANCELLED: [State.CANCELLED],
}


def test_every_move_the_lifecycle_allows_works_and_every_other_is_refused(
    orders: WorkOrders,
) -> None:
    n = 0
    for frm in State:
        for to in State:
            # a fresh order in `frm` (a new problem kind each time: one live order each)
            o = orders.open_or_attach(request(problem=f"p{n}")).order
            n += 1
            walk(orders, o.id, REACH[frm])
            assert orders.get(o.id).state is frm
            if to in TRANSITIONS[frm]:
                moved = orders.transition(o.id, to, actor="test")
                assert moved.state is to
            else:
                with pytest.raises(InvalidTransition) as refused:
                    orders.transition(o.id, to, actor="test")
                message = str(refused.value)
                assert f"is {frm.value}" in message and to.value in message
                if frm in TERMINAL:
                    assert "final" in message
                else:
                    assert all(s.value in message for s in TRANSITIONS[frm])
                assert orders.get(o.id).state is frm  # nothing changed


def test_live_states_are_exactly_the_unfinished_ones() -> None:
    assert State.PROPOSED in LIVE and State.ON_HOLD in LIVE
    assert not LIVE & {State.COMPLETED, State.CLOSED, State.REJECTED, State.CANCELLED}


def test_two_dispatchers_racing_for_one_order_get_one_winner(orders: WorkOrders) -> None:
    o = orders.open_or_attach(request(origin=Origin.OPS, source="ops")).order
    outcomes = race(
        6,
        lambda i: orders.transition(
            o.id, State.ASSIGNED, actor=f"dispatcher-{i}", expect=State.OPEN, technician_id="tech-1"
        ),
    )
    winners = [x for x in outcomes if not isinstance(x, Exception)]
    assert len(winners) == 1, outcomes
    losers = [x for x in outcomes if isinstance(x, Exception)]
    assert all(isinstance(x, ConcurrentChange) for x in losers), losers
    assert "read it again" in str(losers[0])
    assert [e.action for e in orders.history(o.id)].count("assign") == 1


def test_unknown_orders_and_devices_are_named(orders: WorkOrders) -> None:
    with pytest.raises(NotFound, match="work order 999"):
        orders.get(999)
    with pytest.raises(NotFound, match="device 'nope'"):
        orders.open_or_attach(request(device="nope"))


def test_the_database_itself_refuses_a_second_live_order_for_one_problem(
    orders: WorkOrders, db: Database
) -> None:
    import sqlalchemy as sa

    from db.tables import work_orders

    o = orders.open_or_attach(request()).order
    values = {
        "device_id": o.device_id,
        "device_type": o.device_type,
        "problem_kind": o.problem_kind,
        "origin": "ops",
        "state": "open",
        "version": 1,
        "title": "written around the service",
        "description": "",
        "priority": 0,
        "evidence_count": 0,
        "created_at": T0,
        "updated_at": T0,
    }
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.execute(work_orders.insert().values(**values))
    with db.engine.begin() as conn:  # a finished one for the same problem is fine
        conn.execute(work_orders.insert().values(**{**values, "state": "closed"}))
