"""The callback after each job decides the technician's money: satisfied pays, not
satisfied holds it and opens a complaint whose resolution forfeits or releases it,
unreachable pays or holds as the policy says, and silence pays nothing. Complaints climb
outlet → region → maker when their level's time runs out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from db.database import Database
from service.callbacks import Call, CallbackPolicy, Callbacks, RatingRefused
from service.complaints import ComplaintRefused, Complaints, Source
from service.completion import Completion
from service.lifecycle import State
from service.orders import WorkOrders
from service.settlement import Settlement, Status, items_csv, settlement_csv
from tests.service.test_completion import NOW, make_site, on_site, report

H, D = timedelta(hours=1), timedelta(days=1)
Site = tuple[WorkOrders, Completion, Database]


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Site:
    return make_site(db, tmp_path)


def done(orders: WorkOrders, completion: Completion, device: str, problem: str) -> int:
    """A job completed at NOW by tech-1 (water purifier: its serial is SN-WP-1)."""
    oid = on_site(orders, device, problem)
    serial = "SN-WP-1" if device == "wp-1" else "SN-AC-1"  # ac-1 has none on record
    completion.complete(oid, report(serial=serial), now=NOW)
    return oid


def item(db: Database, oid: int, start=NOW, end=NOW + 30 * D):  # type: ignore[no-untyped-def]
    return next(i for i in Settlement(db).items(start, end) if i.order_id == oid)


def test_silence_pays_nothing_and_a_satisfied_callback_pays_on_its_day(site: Site) -> None:
    orders, completion, db = site
    pump = done(orders, completion, "wp-1", "pump_failure")  # a fault: 80.00
    assert item(db, pump).status is Status.AWAITING
    # a month without a rating: still waiting for a callback, not paid
    assert item(db, pump, NOW, NOW + 60 * D).reason == "no callback yet"

    Callbacks(orders).rate(pump, 5, "quick and tidy", nps=9, now=NOW + 3 * H)
    assert orders.get(pump).state is State.CLOSED
    assert orders.history(pump)[-1].reason == "callback: rated 5/5: quick and tidy"
    paid = item(db, pump)
    assert (paid.status, paid.cents, paid.decided_at) == (Status.PAYABLE, 8000, NOW + 3 * H)
    assert paid.reason == "callback: satisfied, rated 5/5"
    # payable once: not again in the next period
    assert [i for i in Settlement(db).items(NOW + 1 * D, NOW + 30 * D) if i.order_id == pump] == []
    with pytest.raises(RatingRefused, match=r"its callback is done \(rated 5/5\)"):
        Callbacks(orders).rate(pump, 4)
    with pytest.raises(RatingRefused, match="1 to 5"):
        Callbacks(orders).rate(done(orders, completion, "ac-1", "inspection"), 6)


def test_not_satisfied_holds_the_commission_until_the_complaint_is_resolved(site: Site) -> None:
    orders, completion, db = site
    kept, lost = (done(orders, completion, "wp-1", p) for p in ("pump_failure", "leak"))
    calls = Callbacks(orders)
    a = calls.call(kept, Call.NOT_SATISFIED, agent="agent-1", comment="still drips", now=NOW + D)
    b = calls.call(lost, Call.NOT_SATISFIED, agent="agent-1", rating=1, now=NOW + D)
    assert a.outcome is not None and a.outcome.value == "not_satisfied"
    assert a.complaint is not None and b.complaint is not None
    assert (a.complaint.source, a.complaint.level, a.complaint.technician_id) == (
        "callback",
        "outlet",
        "tech-1",
    )
    held = item(db, kept)
    assert held.status is Status.HELD
    assert (
        held.reason == f"callback: not satisfied; complaint {a.complaint.id} open at outlet level"
    )

    cases = Complaints(db)
    cases.resolve(
        a.complaint.id,
        resolution="seal was fine: the tap",
        upheld=False,
        actor="o",
        now=NOW + 2 * D,
    )
    cases.resolve(b.complaint.id, resolution="refitted", upheld=True, actor="o", now=NOW + 2 * D)
    released, forfeit = item(db, kept), item(db, lost)
    assert (released.status, released.decided_at) == (Status.PAYABLE, NOW + 2 * D)
    assert released.reason == f"complaint {a.complaint.id} not upheld: seal was fine: the tap"
    assert (forfeit.status, forfeit.reason) == (
        Status.FORFEIT,
        f"complaint {b.complaint.id} upheld: refitted",
    )
    [row] = Settlement(db).statement(NOW, NOW + 30 * D)
    assert (row.jobs_payable, row.released, row.forfeit, row.forfeit_cents) == (1, 1, 1, 8000)
    with pytest.raises(ComplaintRefused, match="resolved already"):
        cases.resolve(b.complaint.id, resolution="again", upheld=False, actor="o")


def test_a_low_rating_in_the_app_is_a_complaint_case(site: Site) -> None:
    orders, completion, db = site
    pump = done(orders, completion, "wp-1", "pump_failure")
    Callbacks(orders).rate(pump, 2, "came twice", now=NOW + H)
    [case] = Complaints(db).find(order_id=pump)
    assert (case.source, case.description, case.customer_id) == ("rating", "came twice", "c-1")
    assert item(db, pump).status is Status.HELD
    # three stars that flag a complaint hold too; two that do not, pay
    other = done(orders, completion, "wp-1", "leak")
    Callbacks(orders).rate(other, 2, complaint=False, now=NOW + H)
    assert item(db, other).status is Status.PAYABLE


@pytest.mark.parametrize("pays", [True, False])
def test_unreachable_after_the_tries_pays_or_holds_as_the_policy_says(
    site: Site, pays: bool
) -> None:
    orders, completion, db = site
    pump = done(orders, completion, "wp-1", "pump_failure")
    calls = Callbacks(orders, policy=CallbackPolicy(tries=3, unreachable_pays=pays))
    for n in (1, 2):
        r = calls.call(pump, Call.NO_ANSWER, agent="agent-1", now=NOW + n * H)
        assert (r.outcome, r.attempts, r.order.state) == (None, n, State.COMPLETED)
    [due] = calls.due()
    assert (due.order_id, due.attempts, due.last_attempt_at) == (pump, 2, NOW + 2 * H)
    assert item(db, pump).reason == "no callback yet (2 unanswered calls)"
    last = calls.call(pump, Call.NO_ANSWER, agent="agent-2", now=NOW + 3 * H)
    assert last.outcome is not None and last.outcome.value == "unreachable"
    assert last.order.state is State.CLOSED and calls.due() == []
    got = next(
        i
        for i in Settlement(db, CallbackPolicy(unreachable_pays=pays)).items(NOW, NOW + D)
        if i.order_id == pump
    )
    if pays:
        assert (got.status, got.reason) == (
            Status.PAYABLE,
            "customer unreachable after 3 calls (policy: pay)",
        )
    else:
        assert (got.status, got.reason) == (
            Status.HELD,
            "customer unreachable after 3 calls (policy: hold)",
        )


def test_a_job_not_completed_has_no_callback(site: Site) -> None:
    orders, _, _ = site
    live = on_site(orders, "wp-1", "pump_failure")
    with pytest.raises(RatingRefused, match="it is in_progress, and only a completed job"):
        Callbacks(orders).call(live, Call.SATISFIED, agent="agent-1")
    with pytest.raises(RatingRefused, match="0 to 10"):
        Callbacks(orders).call(live, Call.SATISFIED, agent="agent-1", nps=11)


def test_complaints_climb_a_level_when_their_time_runs_out(site: Site) -> None:
    orders, completion, db = site
    pump = done(orders, completion, "wp-1", "pump_failure")
    cases = Complaints(db)
    case = cases.open(
        source=Source.CALL, description="noisy", actor="agent-1", order_id=pump, now=NOW
    )
    assert (case.level, case.due_at, case.outlet_id) == ("outlet", NOW + 24 * H, "o-1")
    again = cases.open(
        source=Source.APP, description="still noisy", actor="customer:c-1", order_id=pump, now=NOW
    )
    assert again.id == case.id  # one case per job while it is open
    assert cases.escalate_due(NOW + 23 * H) == []
    [up] = cases.escalate_due(NOW + 25 * H)
    assert (up.level, up.due_at) == ("region", NOW + 25 * H + 48 * H)
    [up] = cases.escalate_due(NOW + 74 * H)
    assert up.level == "maker"
    assert cases.escalate_due(NOW + 400 * H) == []  # the maker is the top: overdue there
    assert [(e.action, e.level) for e in cases.history(case.id)] == [
        ("opened", "outlet"),
        ("repeated", "outlet"),
        ("escalated", "region"),
        ("escalated", "maker"),
    ]
    # about a device, with no job: the customer and outlet come from its site
    loose = cases.open(source=Source.APP, description="smell", actor="c", device_id="ac-1")
    assert (loose.customer_id, loose.outlet_id, loose.order_id) == ("c-1", "o-1", None)
    with pytest.raises(ComplaintRefused, match=r"a job \(order_id\) or a device"):
        cases.open(source=Source.CALL, description="?", actor="a")


def test_the_statement_and_its_lines_as_csv(site: Site) -> None:
    orders, completion, db = site
    pump = done(orders, completion, "wp-1", "pump_failure")
    visit = done(orders, completion, "ac-1", "inspection")  # a service visit: 40.00
    Callbacks(orders).rate(pump, 5, now=NOW + H)
    s = Settlement(db)
    text = settlement_csv(s.statement(NOW, NOW + D))
    assert text.splitlines()[1] == "o-1,tech-1,1,80.00,1,0,0,5.0,0,0.00,0,0.00,1,40.00"
    lines = items_csv(s.items(NOW, NOW + D)).splitlines()
    assert lines[0].startswith("order,outlet,technician,problem")
    assert lines[2].endswith(",40.00,awaiting_callback,,no callback yet")
    assert str(visit) == lines[2].split(",")[0]


def test_the_app_and_agents_answering_at_once_close_the_job_once(site: Site) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from service.callbacks import NoCallbackDue

    orders, completion, db = site
    pump = done(orders, completion, "wp-1", "pump_failure")

    def answer(i: int) -> str:
        calls = Callbacks(WorkOrders(db))
        try:
            if i % 2:
                calls.rate(pump, 1, f"app {i}")
            else:
                calls.call(pump, Call.NOT_SATISFIED, agent=f"agent-{i}")
        except NoCallbackDue:
            return "refused"
        return "answered"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(answer, range(8)))
    assert results.count("answered") == 1, results
    assert len(Complaints(db).find(order_id=pump)) == 1  # one case, not one per answer
    assert item(db, pump).status is Status.HELD
