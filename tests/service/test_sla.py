"""SLA arithmetic: calendar and business clocks, time zones, a DST change, holidays, and
the at-risk and breached flags ops chase."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from db.database import Database
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders
from service.registry import ServiceRegistry, parse_doc
from service.sla import BusinessCalendar, SlaPolicy, SlaStatus

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def test_business_hours_skip_nights_closed_days_and_holidays() -> None:
    cal = BusinessCalendar(
        timezone="Asia/Shanghai",
        days=frozenset({"mon", "tue", "wed", "thu", "fri"}),
        holidays=frozenset({date(2026, 11, 26)}),  # a Thursday
    )
    # Tuesday 18:00 + 4 business hours: 2 on Tuesday, 2 from Wednesday 08:00
    assert cal.add_business_hours(local(SH, 2026, 11, 24, 18), 4) == local(SH, 2026, 11, 25, 10)
    # Wednesday 19:00 + 3: 1 on Wednesday, the holiday Thursday skipped, 2 on Friday
    assert cal.add_business_hours(local(SH, 2026, 11, 25, 19), 3) == local(SH, 2026, 11, 27, 10)
    # Friday 22:00 (closed) + 1: Monday 09:00
    assert cal.add_business_hours(local(SH, 2026, 11, 27, 22), 1) == local(SH, 2026, 11, 30, 9)
    # a start before opening counts from opening
    assert cal.add_business_hours(local(SH, 2026, 11, 24, 6), 0.5) == local(SH, 2026, 11, 24, 8, 30)


def test_across_a_dst_change_business_time_follows_the_wall_clock_and_calendar_time_does_not() -> (
    None
):
    # New York springs forward on Sunday 2026-03-08 (02:00 -> 03:00)
    cal = BusinessCalendar(timezone="America/New_York", opens=time(8), closes=time(20))
    friday_evening = local(NY, 2026, 3, 6, 18)  # EST, UTC-5
    due = cal.add_business_hours(friday_evening, 26)  # 2 Fri + 12 Sat + 12 Sun = 26
    assert due.astimezone(NY) == local(NY, 2026, 3, 8, 20)  # Sunday 20:00, now EDT
    assert due - friday_evening == timedelta(hours=49)  # one wall-clock hour vanished
    policy = SlaPolicy()
    saturday_noon = local(NY, 2026, 3, 7, 12)
    fault = policy.due(
        problem_kind="refrigerant_leak",
        tier="standard",
        opened=saturday_noon,
        timezone="America/New_York",
    )
    assert fault - saturday_noon == timedelta(hours=48)  # elapsed time, exactly
    assert fault.astimezone(NY) == local(NY, 2026, 3, 9, 13)  # 13:00 local: the clocks moved


def test_the_same_moment_is_due_at_different_times_in_different_zones() -> None:
    policy = SlaPolicy()
    opened = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 19:00 Shanghai, 06:00 New York
    sh = policy.due(
        problem_kind="filter_replacement", tier="standard", opened=opened, timezone="Asia/Shanghai"
    )
    ny = policy.due(
        problem_kind="filter_replacement",
        tier="standard",
        opened=opened,
        timezone="America/New_York",
    )
    # 36 business hours: Shanghai has 1 left today, New York opens in 2 hours with 12
    assert sh.astimezone(SH) == local(SH, 2026, 11, 27, 19)
    assert ny.astimezone(NY) == local(NY, 2026, 11, 26, 20)


def test_vip_is_faster_and_a_filter_is_due_before_it_runs_out() -> None:
    policy = SlaPolicy()
    opened = local(SH, 2026, 11, 24, 10)
    std = policy.due(
        problem_kind="pump_failure", tier="standard", opened=opened, timezone="Asia/Shanghai"
    )
    vip = policy.due(
        problem_kind="pump_failure", tier="vip", opened=opened, timezone="Asia/Shanghai"
    )
    assert std - opened == timedelta(hours=48) and vip - opened == timedelta(hours=24)
    exhausted = opened + timedelta(hours=20)
    due = policy.due(
        problem_kind="filter_replacement",
        tier="standard",
        opened=opened,
        timezone="Asia/Shanghai",
        not_after=exhausted,
    )
    assert due == exhausted


def test_orders_get_their_due_time_and_ops_see_what_is_at_risk_or_breached(db: Database) -> None:
    db.upgrade()
    rows = {
        "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai"}],
        "territories": [{"id": "t-1", "name": "A", "outlet_id": "o-1"}],
        "customers": [
            {"id": "c-std", "name": "Wang", "timezone": "Asia/Shanghai"},
            {"id": "c-vip", "name": "Li", "timezone": "Asia/Shanghai", "tier": "vip"},
        ],
        "devices": [
            {
                "id": d,
                "device_type": "air_conditioner",
                "customer_id": c,
                "territory_id": "t-1",
                "address": "x",
            }
            for d, c in (("ac-std", "c-std"), ("ac-vip", "c-vip"))
        ],
    }
    ServiceRegistry(db).load(parse_doc(rows))
    orders = WorkOrders(db)
    t0 = local(SH, 2026, 11, 24, 10)

    def open_(device: str) -> int:
        req = OrderRequest(
            device_id=device,
            problem_kind="refrigerant_leak",
            origin=Origin.APP,
            source="app",
            title="leak",
        )
        return orders.open_or_attach(req, now=t0).order.id

    std, vip = open_("ac-std"), open_("ac-vip")
    assert orders.get(std).due_at == t0 + timedelta(hours=48)
    assert orders.get(vip).due_at == t0 + timedelta(hours=24)
    assert orders.sla_board(t0 + timedelta(hours=1)) == []
    board = orders.sla_board(t0 + timedelta(hours=21))
    assert [(o.id, s) for o, s in board] == [(vip, SlaStatus.AT_RISK)]
    board = orders.sla_board(t0 + timedelta(hours=45))
    assert [(o.id, s) for o, s in board] == [(vip, SlaStatus.BREACHED), (std, SlaStatus.AT_RISK)]
    # completing in time meets it; a completed order leaves the board
    for to in (State.ASSIGNED, State.ACCEPTED, State.SCHEDULED, State.IN_PROGRESS, State.COMPLETED):
        orders.transition(std, to, actor="t", now=t0 + timedelta(hours=46))
    done = orders.get(std)
    assert orders.sla_status(done, t0 + timedelta(days=9)) is SlaStatus.MET
    assert [o.id for o, _ in orders.sla_board(t0 + timedelta(hours=47))] == [vip]


def test_a_proposals_clock_starts_when_ops_approve_it(db: Database) -> None:
    AC = "air_conditioner"
    db.upgrade()
    rows = {
        "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai"}],
        "territories": [{"id": "t-1", "name": "A", "outlet_id": "o-1"}],
        "customers": [{"id": "c-1", "name": "Wang", "timezone": "Asia/Shanghai"}],
        "devices": [
            {"id": d, "device_type": t, "customer_id": "c-1", "territory_id": "t-1", "address": "x"}
            for d, t in (("ac-1", AC), ("ap-1", "purifier"), ("ac-2", AC))
        ],
    }  # fmt: skip
    ServiceRegistry(db).load(parse_doc(rows))
    t0 = local(SH, 2026, 11, 24, 10)
    H = timedelta(hours=1)

    def propose(orders: WorkOrders, device: str, problem: str, **kw: object) -> int:
        req = OrderRequest(
            device_id=device, problem_kind=problem, origin=Origin.AUTO, source="rule", title="x",
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        return orders.open_or_attach(req, now=t0).order.id

    orders = WorkOrders(db)
    leak = propose(orders, "ac-1", "refrigerant_leak")
    waiting = orders.get(leak)
    assert (waiting.due_at, waiting.sla_started_at) == (None, None)
    # a day in the review queue is not on the SLA board: its clock has not started
    assert orders.sla_board(t0 + 30 * H) == []
    approved = orders.transition(leak, State.OPEN, actor="ops", now=t0 + 30 * H)
    assert approved.sla_started_at == t0 + 30 * H
    assert approved.due_at == t0 + 30 * H + 48 * H  # a fault: 48 calendar hours from approval

    # the requester's own deadline stands while it waits, and caps the due time after
    spent = t0 + 40 * H
    job = propose(orders, "ap-1", "filter_replacement", due_at=spent)
    assert orders.get(job).due_at == spent
    assert orders.transition(job, State.OPEN, actor="ops", now=t0 + 30 * H).due_at == spent

    # a policy without it: the clock runs from creation, as for a customer's own request
    at_creation = WorkOrders(db, sla=SlaPolicy(clock_at_approval=frozenset()))
    other = propose(at_creation, "ac-2", "refrigerant_leak")
    assert at_creation.get(other).due_at == t0 + 48 * H
    assert at_creation.get(other).sla_started_at == t0
