"""Appointments: slots in the technician's working day (their time zone), outside the
customer's quiet hours (theirs), never double-booked; filter-package customers booked
automatically."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import appointment_offers, notifications
from service.appointments import Appointments
from service.errors import SlotUnavailable
from service.lifecycle import State
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from tests.service.helpers import accepted
from tests.world import WORLD

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 08:00 in Shanghai


def local(day: int, hour: int, tz: ZoneInfo = SHANGHAI) -> datetime:
    """24 Nov 2026 + `day` days, at `hour`:00 in `tz`, as UTC."""
    return datetime(2026, 11, 24 + day, hour, tzinfo=tz).astimezone(UTC)


def kinds(db: Database, order_id: int) -> list[str]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(notifications.c.kind)
            .where(notifications.c.order_id == order_id)
            .order_by(notifications.c.id)
        )
        return list(rows.scalars())


def test_slots_lie_in_working_hours_after_the_lead_time(world: Database) -> None:
    order = accepted(world, "ap-1", "filter_replacement", NOW)
    slots = Appointments(WorkOrders(world)).free_slots(order, now=NOW)
    starts = [s.start.astimezone(SHANGHAI) for s in slots]
    assert starts[0] == local(0, 10)  # 08:00 is too soon: two hours' lead
    assert all(t.hour >= 8 and (t + timedelta(hours=2)).hour <= 18 for t in starts)
    assert len(slots) == 4 + 6 * 5  # the rest of today, then six full days of five


def test_slots_skip_the_customers_quiet_hours(world: Database) -> None:
    order = accepted(world, "ap-2", "filter_replacement", NOW)  # quiet 12:00–14:00
    slots = Appointments(WorkOrders(world)).free_slots(order, now=NOW)
    assert slots
    assert all(s.start.astimezone(SHANGHAI).hour != 12 for s in slots)


def test_quiet_hours_are_the_customers_own_in_their_time_zone(world: Database) -> None:
    # the technician works in Shanghai; this customer sleeps in Berlin until 08:00,
    # which is 15:00 in Shanghai in November
    order = accepted(world, "ap-3", "filter_replacement", NOW)
    slots = Appointments(WorkOrders(world)).free_slots(order, now=NOW)
    assert {s.start.astimezone(SHANGHAI).hour for s in slots} == {16}
    assert all(s.start.astimezone(ZoneInfo("Europe/Berlin")).hour == 9 for s in slots)


def test_an_offer_gives_a_choice_of_days_within_the_sla_and_tells_the_customer(
    world: Database,
) -> None:
    order = accepted(world, "ap-1", "filter_replacement", NOW)
    offered = Appointments(WorkOrders(world)).offer(order, now=NOW)
    assert [s.start for s in offered] == [local(0, 10), local(1, 8), local(2, 8)]
    assert all(s.before_due for s in offered)
    assert kinds(world, order) == ["job_opened", "slot_proposed"]

    again = Appointments(WorkOrders(world)).offer(order, count=2, now=NOW)
    assert Appointments(WorkOrders(world)).offered(order) == again  # the old offer is gone
    assert kinds(world, order).count("slot_proposed") == 2


def test_the_customer_confirms_an_offered_slot(world: Database) -> None:
    orders = WorkOrders(world)
    order = accepted(world, "ap-1", "filter_replacement", NOW)
    appointments = Appointments(orders)
    offered = appointments.offer(order, now=NOW)
    booked = appointments.confirm(order, offered[1].start, actor="customer:c-app", now=NOW)
    assert booked.state is State.SCHEDULED
    assert (booked.scheduled_start, booked.scheduled_end) == (offered[1].start, offered[1].end)
    with world.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.select(appointment_offers.c.slot_start, appointment_offers.c.status)
            ).all()
        )
    assert sorted(statuses.values()) == ["superseded", "superseded", "taken"]
    assert kinds(world, order)[-1] == "appointment_confirmed"


def test_the_customer_may_pick_another_free_time_and_reschedule(world: Database) -> None:
    orders = WorkOrders(world)
    order = accepted(world, "ap-1", "filter_replacement", NOW)
    appointments = Appointments(orders)
    appointments.confirm(order, local(3, 14), actor="customer:c-app", now=NOW)
    moved = appointments.confirm(order, local(4, 16), actor="customer:c-app", now=NOW)
    assert moved.state is State.SCHEDULED and moved.scheduled_start == local(4, 16)
    assert orders.history(order)[-1].action == "reschedule"
    assert kinds(world, order).count("appointment_confirmed") == 2


@pytest.mark.parametrize(
    ("start", "why"),
    [
        (local(0, 9), "too soon"),
        (local(1, 19), "working hours"),
        (local(1, 7), "working hours"),
    ],
)
def test_a_time_that_is_not_free_is_refused_with_the_reason(
    world: Database, start: datetime, why: str
) -> None:
    order = accepted(world, "ap-1", "filter_replacement", NOW)
    with pytest.raises(SlotUnavailable, match=why):
        Appointments(WorkOrders(world)).confirm(order, start, actor="customer:c-app", now=NOW)
    assert WorkOrders(world).get(order).state is State.ACCEPTED


def test_quiet_hours_and_double_booking_are_refused(world: Database) -> None:
    appointments = Appointments(WorkOrders(world))
    first = accepted(world, "ap-1", "filter_replacement", NOW)
    quiet = accepted(world, "ap-2", "filter_replacement", NOW)
    appointments.confirm(first, local(1, 10), actor="customer:c-app", now=NOW)
    with pytest.raises(SlotUnavailable, match="another visit"):
        appointments.confirm(quiet, local(1, 10), actor="customer:c-sms", now=NOW)
    with pytest.raises(SlotUnavailable, match="quiet hours"):
        appointments.confirm(quiet, local(1, 12), actor="customer:c-sms", now=NOW)
    with pytest.raises(SlotUnavailable, match="no time zone"):
        appointments.confirm(quiet, datetime(2026, 11, 26, 8), actor="customer:c-sms", now=NOW)


def test_a_full_day_is_refused(world: Database) -> None:
    appointments = Appointments(WorkOrders(world))  # tech-1 takes 3 visits a day
    devices = [
        ("ap-1", "filter_replacement"),
        ("ap-2", "filter_replacement"),
        ("ac-1", "refrigerant_leak"),
        ("wp-1", "filter_replacement_ro"),
    ]
    ids = [accepted(world, d, p, NOW) for d, p in devices]
    for order, hour in zip(ids[:3], (8, 10, 14), strict=True):
        appointments.confirm(order, local(2, hour), actor="ops", now=NOW)
    with pytest.raises(SlotUnavailable, match="capacity"):
        appointments.confirm(ids[3], local(2, 16), actor="ops", now=NOW)
    assert all(
        s.start.date() != local(2, 8).date() for s in appointments.free_slots(ids[3], now=NOW)
    )


def test_two_customers_racing_for_one_slot_get_one_booking(world: Database) -> None:
    a = accepted(world, "ap-1", "filter_replacement", NOW)
    b = accepted(world, "ap-2", "filter_replacement", NOW)
    barrier = threading.Barrier(2)
    results: dict[int, str] = {}

    def book(order: int) -> None:
        barrier.wait()
        try:
            Appointments(WorkOrders(world)).confirm(order, local(1, 10), actor="c", now=NOW)
            results[order] = "booked"
        except SlotUnavailable as e:
            results[order] = str(e)

    threads = [threading.Thread(target=book, args=(o,)) for o in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values())[0] == "booked"
    assert "another visit" in sorted(results.values())[1]


def test_a_dst_change_moves_the_working_day_with_the_clocks(db: Database) -> None:
    db.upgrade()
    berlin = {**WORLD, "outlets": [{"id": "o-1", "name": "Mitte", "timezone": "Europe/Berlin"}]}
    berlin["technicians"] = [{**WORLD["technicians"][0], "timezone": "Europe/Berlin"}]
    ServiceRegistry(db).load(parse_doc(berlin))  # type: ignore[arg-type]
    saturday = datetime(2026, 3, 28, 5, 0, tzinfo=UTC)  # clocks go forward on Sunday 29th
    order = accepted(db, "ap-3", "filter_replacement", saturday)
    slots = Appointments(WorkOrders(db)).free_slots(order, now=saturday)
    firsts = {}
    for s in slots:
        firsts.setdefault(s.start.astimezone(ZoneInfo("Europe/Berlin")).date().day, s.start)
    assert firsts[29].astimezone(ZoneInfo("Europe/Berlin")).hour == 8
    assert (firsts[28].hour, firsts[29].hour) == (7, 6)  # 08:00 CET, then 08:00 CEST, in UTC
    assert all(s.end - s.start == timedelta(hours=2) for s in slots)


def test_filter_package_customers_are_booked_automatically(world: Database) -> None:
    package = accepted(world, "ap-2", "filter_replacement", NOW)  # c-sms has a package
    no_package = accepted(world, "ap-1", "filter_replacement", NOW)
    fault = accepted(world, "wp-1", "sensor_check", NOW)  # c-sms, but not a filter
    booked = Appointments(WorkOrders(world)).book_filter_packages(now=NOW)
    assert list(booked) == [package]
    order = WorkOrders(world).get(package)
    assert order.state is State.SCHEDULED and order.scheduled_start == local(0, 10)
    assert WorkOrders(world).history(package)[-1].actor == "system:filter-package"
    assert WorkOrders(world).get(no_package).state is State.ACCEPTED
    assert WorkOrders(world).get(fault).state is State.ACCEPTED
    assert Appointments(WorkOrders(world)).book_filter_packages(now=NOW) == {}


def test_a_package_replacement_goes_from_prediction_to_a_closed_job_with_no_review_and_no_charge(
    world: Database, tmp_path: Path
) -> None:
    from service.completion import Completion, CompletionReport, Fee, Outcome, PartUsed
    from service.dispatch import Dispatcher
    from service.lifecycle import Origin
    from tests.service.helpers import opened

    # the rules open a filter job from a prediction, for a package customer and another
    spent = NOW + timedelta(days=5)
    package = opened(world, "ap-2", "filter_replacement", NOW, origin=Origin.AUTO, due_at=spent)
    other = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO, due_at=spent)
    orders = WorkOrders(world)
    assert orders.get(other).state is State.PROPOSED  # ops review it
    job = orders.get(package)
    assert job.state is State.OPEN and job.sla_started_at == NOW  # the package said yes
    assert "filter package covers it: no review" in orders.history(package)[0].reason
    dispatcher = Dispatcher(world)
    assert dispatcher.run([package], now=NOW).assigned == 1
    dispatcher.accept(package, "tech-1", now=NOW)
    booked = Appointments(orders).book_filter_packages(now=NOW)
    assert list(booked) == [package]  # the customer did not have to pick
    slot = booked[package]
    orders.transition(package, State.IN_PROGRESS, actor="tech-1", now=slot.start)
    done, bill = Completion(orders, tmp_path / "photos").complete(
        package,
        CompletionReport(
            technician_id="tech-1",
            outcome=Outcome.FIXED,
            serial="SN-AP-2",
            parts=[PartUsed("AP-HEPA-01")],
            fees=[Fee("Call-out", 4900)],
        ),
        now=slot.start + timedelta(hours=1),
    )
    assert [x.payer for x in bill.lines] == ["package", "package"]
    assert (bill.total_cents, bill.customer_cents) == (29900 + 4900, 0)
    assert done.due_at is not None and done.completed_at is not None
    assert done.completed_at <= done.due_at <= spent
