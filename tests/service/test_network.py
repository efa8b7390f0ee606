"""The outlet network: maker → region → outlet → technician. An outlet with hours to
accept sees its jobs first; accepted, its technicians are sent; declined or left
unanswered, the job moves to another outlet of the region (or waits for the region's
ops); two answers at once give one. An outlet's fees are by job type, and its statement
(fees by callback, warranty claims, deductions for SLA breaches, late answers and upheld
complaints) reconciles with its jobs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.database import Database
from service.callbacks import Call, Callbacks
from service.complaints import Complaints
from service.completion import Completion, Fee, PartUsed
from service.dispatch import Dispatcher
from service.lifecycle import Origin, State
from service.network import CannotReroute, Network, NotOffered
from service.orders import WorkOrders
from service.outlet_statements import OutletPolicy, OutletStatements, fee_for
from service.registry import ServiceRegistry, parse_doc
from tests.service.helpers import opened
from tests.service.test_completion import report
from tests.world import EVERY_DAY, WORLD

NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def network(db: Database, *, o1_hours: int | None = 2, o2_hours: int | None = None) -> None:
    """The world's outlet o-1 in region r-1, and a second outlet there, o-2, with its own
    territory and technician tech-2 (purifiers only)."""
    ServiceRegistry(db).load(
        parse_doc(
            {
                "regions": [{"id": "r-1", "name": "East"}],
                "outlets": [
                    {**WORLD["outlets"][0], "region_id": "r-1", "accept_hours": o1_hours},
                    {"id": "o-2", "name": "Minhang", "timezone": "Asia/Shanghai",
                     "region_id": "r-1", "accept_hours": o2_hours},
                ],
                "territories": [{"id": "t-3", "name": "Xinzhuang", "outlet_id": "o-2"}],
                "technicians": [
                    {"id": "tech-2", "name": "Sun", "outlet_id": "o-2",
                     "timezone": "Asia/Shanghai", "working_hours": EVERY_DAY,
                     "skills": [{"device_type": "purifier"}], "territories": ["t-3"]}
                ],
                "stock": [{"technician_id": "tech-2", "sku": "AP-HEPA-01", "qty": 2}],
            }  # type: ignore[dict-item]
        )
    )  # fmt: skip


def test_the_hierarchy_is_maker_region_outlet_technician(world: Database) -> None:
    network(world)
    [east] = Network(world).tree()
    assert (east.id, [o.id for o in east.outlets]) == ("r-1", ["o-1", "o-2"])
    assert [(o.accept_hours, o.technicians) for o in east.outlets] == [
        (2, ["tech-1"]), (None, ["tech-2"]),
    ]  # fmt: skip
    assert [o.id for r in Network(world).tree({"o-2"}) for o in r.outlets] == ["o-2"]


def test_an_outlets_technicians_see_a_job_only_once_it_accepted_it(world: Database) -> None:
    network(world)
    order = opened(world, "ap-1", "filter_replacement", NOW)
    assert WorkOrders(world).get(order).outlet_state == "offered"
    assert Dispatcher(world).run([order], now=NOW).assigned == 0
    [offer] = Network(world).offers(state="offered")
    assert (offer.order_id, offer.outlet_id, offer.due_at) == (order, "o-1", NOW + 2 * HOUR)
    with pytest.raises(NotOffered):  # another outlet's ops cannot answer for o-1
        Network(world).accept(order, by="ops-o2", outlets_={"o-2"}, now=NOW)
    Network(world).accept(order, by="ops-o1", outlets_={"o-1"}, now=NOW + HOUR)
    assert Dispatcher(world).run([order], now=NOW + HOUR).assigned == 1
    assert WorkOrders(world).get(order).technician_id == "tech-1"
    actions = [e.action for e in WorkOrders(world).history(order)]
    assert "outlet_accept" in actions


def test_a_declined_job_goes_to_another_outlet_of_the_region(world: Database) -> None:
    network(world)
    order = opened(world, "ap-1", "filter_replacement", NOW)
    with pytest.raises(NotOffered, match="say why"):
        Network(world).decline(order, by="ops-o1", reason=" ", now=NOW)
    moved = Network(world).decline(order, by="ops-o1", reason="no one free this week", now=NOW)
    # o-2 takes jobs at once: its technician goes, though t-1 is not their territory
    assert (moved.outlet_id, moved.outlet_state) == ("o-2", "accepted")
    Dispatcher(world).run([order], now=NOW)
    assert WorkOrders(world).get(order).technician_id == "tech-2"
    reasons = [e.reason for e in WorkOrders(world).history(order) if e.action == "outlet_reroute"]
    assert reasons == ["outlet o-1 declined it: no one free this week; offered to outlet o-2"]


def test_a_job_nobody_answers_moves_on_and_counts_against_the_outlet(world: Database) -> None:
    network(world, o2_hours=4)
    order = opened(world, "ap-1", "filter_replacement", NOW)
    net = Network(world)
    assert net.expire(now=NOW + HOUR) == []  # still within its two hours
    assert net.expire(now=NOW + 2 * HOUR) == [order]
    o = WorkOrders(world).get(order)
    assert (o.outlet_id, o.outlet_state) == ("o-2", "offered")  # o-2 has four hours
    assert net.expire(now=NOW + 7 * HOUR) == [order]
    o = WorkOrders(world).get(order)
    # nobody left in the region: it waits for the region's ops, and says so
    assert o.outlet_state == "declined" and "name one" in (o.unassignable_reason or "")
    statement = OutletStatements(world).lines(NOW, NOW + timedelta(days=1))
    assert [(x.outlet_id, x.item, x.cents) for x in statement] == [
        ("o-1", "late answer", -2000), ("o-2", "late answer", -2000),
    ]  # fmt: skip
    back = net.reroute(order, "o-1", by="ops-east", reason="o-1 has time now", now=NOW + 8 * HOUR)
    assert (back.outlet_id, back.outlet_state) == ("o-1", "offered")


def test_a_fault_goes_only_where_someone_can_fix_it(world: Database) -> None:
    network(world)
    order = opened(world, "wp-1", "pump_failure", NOW)  # tech-2 does purifiers only
    stuck = Network(world).decline(order, by="ops-o1", reason="busy", now=NOW)
    assert stuck.outlet_state == "declined" and stuck.outlet_id == "o-1"
    assert "no other outlet of region r-1" in (stuck.unassignable_reason or "")


def test_two_answers_at_once_give_one(world: Database) -> None:
    network(world)
    order = opened(world, "ap-1", "filter_replacement", NOW)
    net = Network(world)

    def answer(yes: bool) -> str:
        try:
            if yes:
                net.accept(order, by="a", now=NOW)
            else:
                net.decline(order, by="b", reason="no", now=NOW)
        except NotOffered:
            return "refused"
        return "done"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(answer, [True, False, True, False]))
    assert results.count("done") == 1
    assert len([o for o in net.offers(state=None) if o.state != "offered"]) == 1


def test_only_an_open_job_moves_and_only_to_an_outlet_that_exists(world: Database) -> None:
    network(world, o1_hours=None)
    order = opened(world, "ap-1", "filter_replacement", NOW)
    with pytest.raises(Exception, match="outlet"):
        Network(world).reroute(order, "o-9", by="ops", now=NOW)
    Dispatcher(world).run([order], now=NOW)
    with pytest.raises(CannotReroute, match="only an open job"):
        Network(world).reroute(order, "o-2", by="ops", now=NOW)


def test_an_approved_proposal_is_offered_to_its_outlet_then(world: Database) -> None:
    network(world)
    order = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    assert WorkOrders(world).get(order).outlet_state is None  # ops may still reject it
    WorkOrders(world).transition(order, State.OPEN, actor="ops", now=NOW + HOUR)
    [offer] = Network(world).offers()
    assert offer.offered_at == NOW + HOUR


def test_fees_are_by_job_type_the_outlets_own_first(world: Database) -> None:
    network(world)
    ServiceRegistry(world).load(
        parse_doc(
            {
                "outlet_fees": [
                    {"job_type": "fault", "cents": 6000},
                    {"job_type": "pump_failure", "cents": 9000},
                    {"outlet_id": "o-2", "job_type": "fault", "cents": 7000},
                ]
            }
        )
    )
    with world.engine.connect() as conn:
        assert fee_for(conn, "o-1", "motor_wear") == 6000  # every outlet's, by class
        assert fee_for(conn, "o-1", "pump_failure") == 9000  # by kind
        assert fee_for(conn, "o-2", "pump_failure") == 7000  # the outlet's own first
        assert fee_for(conn, "o-2", "filter_replacement") == 0  # no fee for that type


def _done(world: Database, tmp_path: Path, device: str, problem: str, at: datetime) -> int:
    orders = WorkOrders(world)
    order = opened(world, device, problem, NOW)
    orders.transition(order, State.ASSIGNED, actor="d", technician_id="tech-1", now=NOW)
    for to in (State.ACCEPTED, State.SCHEDULED, State.IN_PROGRESS):
        orders.transition(order, to, actor="tech-1", now=NOW)
    serial = {"ap-1": "SN-AP-1", "ap-3": "SN-AP-3", "wp-1": "SN-WP-1"}[device]
    parts = [PartUsed("AP-HEPA-01")] if device.startswith("ap") else []
    Completion(orders, tmp_path).complete(
        order, report(serial=serial, parts=parts, fees=[Fee("Call-out", 5000)]), now=at
    )
    return order


def test_an_outlets_statement_reconciles_with_its_jobs(world: Database, tmp_path: Path) -> None:
    network(world, o1_hours=None)
    ServiceRegistry(world).load(
        parse_doc({"outlet_fees": [{"job_type": "fault", "cents": 6000},
                                   {"job_type": "filter", "cents": 2000}]})
    )  # fmt: skip
    callbacks, cases = Callbacks(WorkOrders(world)), Complaints(world)
    happy = _done(world, tmp_path, "ap-1", "filter_replacement", NOW + HOUR)
    callbacks.rate(happy, 5, now=NOW + 2 * HOUR)
    late = _done(world, tmp_path, "ap-3", "motor_wear", NOW + timedelta(days=20))  # past due
    callbacks.call(late, Call.SATISFIED, agent="a", now=NOW + timedelta(days=20, hours=1))
    upset = _done(world, tmp_path, "wp-1", "pump_failure", NOW + 3 * HOUR)
    case = callbacks.call(upset, Call.NOT_SATISFIED, agent="a", now=NOW + 4 * HOUR).complaint
    assert case is not None
    cases.resolve(case.id, resolution="refitted", upheld=True, actor="ops", now=NOW + 5 * HOUR)
    waiting = _done(world, tmp_path, "ap-1", "motor_wear", NOW + 6 * HOUR)

    start, end = NOW, NOW + timedelta(days=30)
    lines = OutletStatements(world).lines(start, end)
    [row] = OutletStatements(world).statements(start, end)
    fees = {x.order_id: (x.status, x.amount_cents, x.cents) for x in lines if x.kind == "fee"}
    assert fees == {
        happy: ("payable", 2000, 2000),
        late: ("payable", 6000, 6000),
        upset: ("forfeit", 6000, 0),
        waiting: ("awaiting_callback", 6000, 0),
    }
    deductions = sorted((x.item, x.order_id) for x in lines if x.kind == "deduction")
    assert deductions == [("SLA breach", late), ("complaint upheld", upset)]
    policy = OutletPolicy()
    assert (row.outlet_id, row.region_id, row.jobs) == ("o-1", "r-1", 4)
    assert (row.fees_payable_cents, row.fees_forfeit_cents, row.fees_awaiting_cents) == (
        8000, 6000, 6000,
    )  # fmt: skip
    assert row.deductions_cents == policy.sla_breach_cents + policy.upheld_complaint_cents
    assert row.net_cents == sum(x.cents for x in lines)
    assert row.net_cents == 8000 + row.warranty_cents - row.deductions_cents
