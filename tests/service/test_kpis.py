"""KPIs from the orders: a week with four jobs, each figure worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from db.database import Database
from service.callbacks import Callbacks
from service.completion import Completion, CompletionReport, Outcome, PartUsed
from service.dispatch import Dispatcher
from service.kpis import RESOLVED_ONLINE, GroupBy, Period, kpis, kpis_csv
from service.lifecycle import State
from service.orders import WorkOrders
from tests.service.helpers import opened

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai
H = timedelta(hours=1)
D = timedelta(days=1)


def visit(
    db: Database,
    tmp: Path,
    order: int,
    *,
    dispatched: datetime,
    done: datetime,
    outcome: Outcome,
    part: str,
    serial: str,
    declined: bool = False,
) -> None:
    orders, dispatcher = WorkOrders(db), Dispatcher(db)
    dispatcher.run([order], now=dispatched)
    if declined:  # the only technician says no; ops hand it back to them later
        dispatcher.decline(order, "tech-1", "van full", now=dispatched)
        orders.transition(order, State.ASSIGNED, actor="ops", technician_id="tech-1", now=done - H)
    dispatcher.accept(order, "tech-1", now=dispatched if not declined else done - H)
    orders.transition(
        order,
        State.SCHEDULED,
        actor="c",
        now=done - H,
        scheduled_start=done - H,
        scheduled_end=done,
    )
    orders.transition(order, State.IN_PROGRESS, actor="tech-1", now=done - H)
    report = CompletionReport(
        technician_id="tech-1", outcome=outcome, serial=serial, parts=[PartUsed(part)]
    )
    Completion(orders, tmp).complete(order, report, now=done)


@pytest.fixture
def week(world: Database, tmp_path: Path) -> Database:
    a = opened(world, "ap-1", "filter_replacement", T0)
    b = opened(world, "ap-2", "filter_replacement", T0)
    c = opened(world, "ac-1", "refrigerant_leak", T0)
    d = opened(world, "ap-3", "filter_replacement", T0)
    visit(
        world,
        tmp_path,
        a,
        dispatched=T0 + H,
        done=T0 + D,
        outcome=Outcome.FIXED,
        part="AP-HEPA-01",
        serial="SN-AP-1",
    )
    visit(
        world,
        tmp_path,
        b,
        dispatched=T0 + 2 * H,
        done=T0 + 5 * D,
        outcome=Outcome.FOLLOW_UP,
        part="AP-HEPA-01",
        serial="SN-AP-2",
    )
    visit(
        world,
        tmp_path,
        c,
        dispatched=T0 + 3 * H,
        done=T0 + D + 12 * H,
        outcome=Outcome.FIXED,
        part="AC-R32-1KG",
        serial="SN-AC-1",
        declined=True,
    )
    WorkOrders(world).transition(
        d,
        State.CANCELLED,
        actor="ops",
        reason="reset in the app",
        now=T0 + H,
        resolution=RESOLVED_ONLINE,
    )
    Callbacks(WorkOrders(world)).rate(a, 5, nps=10, now=T0 + D + 2 * H)
    Callbacks(WorkOrders(world)).rate(b, 2, "came twice", nps=3, now=T0 + 6 * D)
    opened(world, "ac-1", "refrigerant_leak", T0 + 10 * D)  # it came back: not fixed first time
    return world


def test_a_weeks_kpis_per_outlet(week: Database) -> None:
    (row,) = kpis(week, T0, T0 + 7 * D, by=GroupBy.OUTLET, now=T0 + 8 * D)
    assert (row.group, row.period) == ("o-1", date(2026, 11, 23))
    assert (row.opened, row.completed) == (4, 3)
    assert row.first_time_fix == pytest.approx(1 / 3, abs=1e-4)  # b follow-up, c came back
    assert row.dispatch_first_time == pytest.approx(2 / 3, abs=1e-4)  # c was declined
    assert row.parts_fill_rate == pytest.approx(2 / 3, abs=1e-4)  # c's gas from the outlet
    assert row.sla_compliance == pytest.approx(2 / 3, abs=1e-4)  # b was late
    assert row.hours_to_dispatch == 2.0  # 1, 2 and 3 hours
    assert row.hours_to_complete == 60.0  # 24, 120 and 36 hours
    assert row.mean_rating == 3.5
    assert row.nps == 0.0  # asked 0-10: a promoter (10) and a detractor (3)
    assert row.complaint_rate == pytest.approx(1 / 3, abs=1e-4)
    assert row.resolved_online == 0.25  # d, of four finished


def test_a_complaint_by_phone_about_a_job_counts_like_a_low_rating(week: Database) -> None:
    from service.complaints import Complaints, Source

    unrated = next(o.id for o in WorkOrders(week).find(limit=50) if o.state is State.COMPLETED)
    Complaints(week).open(
        source=Source.CALL, description="the unit still smells", actor="agent-1",
        order_id=unrated, now=T0 + 7 * D,
    )  # fmt: skip
    (row,) = kpis(week, T0, T0 + 7 * D, by=GroupBy.OUTLET, now=T0 + 8 * D)
    assert row.complaint_rate == pytest.approx(2 / 3, abs=1e-4)


def test_kpis_per_technician_and_day(week: Database) -> None:
    rows = kpis(week, T0, T0 + 7 * D, by=GroupBy.TECHNICIAN, period=Period.DAY, now=T0 + 8 * D)
    by_day = {(r.group, r.period): r for r in rows}
    assert by_day[("tech-1", date(2026, 11, 24))].completed == 2  # a, then c
    assert by_day[("tech-1", date(2026, 11, 28))].completed == 1  # b
    assert by_day[("-", date(2026, 11, 23))].resolved_online == 1.0  # d was never assigned


def test_a_period_in_the_outlets_time_zone(week: Database) -> None:
    # c completed at 12:00 UTC on the 24th: still the 24th in Shanghai (20:00)
    rows = kpis(
        week,
        T0,
        T0 + 7 * D,
        by=GroupBy.ALL,
        period=Period.DAY,
        timezone="Asia/Shanghai",
        now=T0 + 8 * D,
    )
    assert {r.period: r.completed for r in rows if r.completed} == {
        date(2026, 11, 24): 2,
        date(2026, 11, 28): 1,
    }


def test_an_order_counts_against_the_sla_once_its_due_time_passed(world: Database) -> None:
    opened(world, "ap-1", "filter_replacement", T0)  # due Wednesday 20:00 in Shanghai
    (before,) = kpis(world, T0, T0 + 7 * D, by=GroupBy.ALL, now=T0 + D)
    assert before.sla_compliance is None  # still open to play for: not counted yet
    (after,) = kpis(world, T0, T0 + 7 * D, by=GroupBy.ALL, now=T0 + 3 * D)
    assert after.sla_compliance == 0.0  # past due and not done: missed


def test_kpis_as_csv(week: Database) -> None:
    text = kpis_csv(kpis(week, T0, T0 + 7 * D, now=T0 + 8 * D))
    header, line = text.splitlines()
    assert header.startswith("group,period,opened,completed,first_time_fix")
    assert line.startswith("o-1,2026-11-23,4,3,0.3333")
