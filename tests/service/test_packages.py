"""Filter packages as a product: plans per product, sales kept by the seller's id (one
package however often or concurrently sent), renewals that start when the cover ends,
entitlements counted by the jobs they pay, visits booked in the preferred times,
renewal reminders within the caps, and diy replacements shipped and closed by the
device's own report. In the world, Wang (c-sms) has packages on ap-2 and wp-1."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import filter_replacements, notifications, outlet_stock, packages
from rules.evaluator import Evaluator
from service.appointments import Appointments
from service.callbacks import Callbacks
from service.dispatch import Dispatcher
from service.diy import Diy, NotDiy, OutOfStock
from service.lifecycle import Origin, State
from service.notifications import NotifyPolicy, Outbox
from service.orders import WorkOrders
from service.packages import Fulfilment, PackageRefused, Packages, Preferred, SaleConflict
from service.registry import ServiceRegistry, parse_doc
from service.self_service import SelfService
from telemetry.backends import StoreSettings, create_store
from tests.rules.test_evaluator import catalog, feed
from tests.service.helpers import accepted, opened
from tests.service.test_notifications import Inbox

NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 08:00 in Shanghai
TODAY = NOW.date()
SHANGHAI = ZoneInfo("Asia/Shanghai")


def plans(db: Database, *rows: dict[str, object]) -> None:
    ServiceRegistry(db).load(parse_doc({"package_plans": list(rows)}))


YEARLY = {
    "id": "p-2x", "name": "Two filters a year", "device_type": "purifier", "replacements": 2,
    "months": 12, "price_cents": 49900, "diy": True,
}  # fmt: skip
ONE = {
    "id": "p-1x", "name": "One filter", "device_type": "purifier", "replacements": 1,
    "months": 6, "price_cents": 25900,
}  # fmt: skip


def sell(db: Database, device: str, plan: str, sale: str, **kw: object):  # type: ignore[no-untyped-def]
    return Packages(db).sell(
        device, plan, sale_id=sale, sold_by="agent-1", channel="agent", now=NOW, **kw
    )  # type: ignore[arg-type]


def test_a_device_is_offered_its_models_and_its_types_plans_on_sale(world: Database) -> None:
    plans(
        world,
        YEARLY,
        {**ONE, "id": "p-model", "model": "KJ-X", "device_type": None},
        {**ONE, "id": "p-old", "active": False},
        {**ONE, "id": "p-wp", "device_type": "water_purifier"},
    )
    offered = [p.id for p in Packages(world).plans("ap-1")]
    assert "p-2x" in offered and "care-purifier" in offered
    assert "p-old" not in offered and "p-wp" not in offered and "p-model" not in offered
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE devices SET model = 'KJ-X' WHERE id = 'ap-1'"))
    assert "p-model" in [p.id for p in Packages(world).plans("ap-1")]


def test_a_sale_is_one_package_however_often_or_concurrently_it_is_sent(
    world: Database,
) -> None:
    plans(world, YEARLY)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: sell(world, "ap-1", "p-2x", "shop-77"), range(8)))
    assert len({p.id for p, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    package = results[0][0]
    assert (package.customer_id, package.starts_on) == ("c-app", TODAY)
    assert package.ends_on == date(2027, 11, 24) and package.remaining == 2
    with pytest.raises(SaleConflict, match="shop-77 is package"):
        sell(world, "ap-3", "p-2x", "shop-77")


def test_what_cannot_be_sold_says_why(world: Database) -> None:
    plans(world, YEARLY, {**ONE, "id": "p-old", "active": False})
    with pytest.raises(PackageRefused, match="plan care-wp is for water_purifier"):
        sell(world, "ap-1", "care-wp", "s-a")
    with pytest.raises(PackageRefused, match="no longer sold"):
        sell(world, "ap-1", "p-old", "s-b")
    with pytest.raises(PackageRefused, match="no diy option"):
        sell(world, "wp-1", "care-wp", "s-c", fulfilment=Fulfilment.DIY)
    with world.engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(packages)).scalar() == 2


def test_a_renewal_starts_when_the_cover_ends_and_keeps_how_it_is_taken(
    world: Database,
) -> None:
    plans(world, YEARLY)
    first, _ = sell(
        world, "ap-1", "p-2x", "s-1", fulfilment=Fulfilment.DIY, preferred=Preferred(("sat",))
    )
    renewed, created = Packages(world).renew(
        first.id, sale_id="s-2", sold_by="c-app", channel="app", now=NOW + timedelta(days=300)
    )
    assert created and renewed.renews_id == first.id
    assert renewed.starts_on == first.ends_on  # no double cover, nothing paid is lost
    assert (renewed.fulfilment, renewed.preferred.days) == (Fulfilment.DIY, ("sat",))
    assert Packages(world).get(first.id).renewed_by_id == renewed.id
    assert renewed.status(TODAY) == "upcoming" and first.status(TODAY) == "active"


def test_each_replacement_uses_one_and_a_cancelled_job_gives_it_back(world: Database) -> None:
    plans(world, ONE)
    package, _ = sell(world, "ap-1", "p-1x", "s-1")
    orders = WorkOrders(world)
    first = orders.get(opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO))
    # the sale said yes already: no review, straight to dispatch, paid by the package
    assert (first.state, first.package_id, first.fulfilment) == (State.OPEN, package.id, "visit")
    assert Packages(world).get(package.id).remaining == 0
    orders.transition(first.id, State.CANCELLED, actor="ops", reason="duplicate", now=NOW)
    assert Packages(world).get(package.id).remaining == 1
    again = orders.get(opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO))
    assert again.package_id == package.id
    orders.transition(again.id, State.CANCELLED, actor="ops", reason="test", now=NOW)
    # a fault is never the package's; nor is a filter after the package ended
    fault = orders.get(opened(world, "ap-1", "motor_wear", NOW, origin=Origin.AUTO))
    assert (fault.state, fault.package_id) == (State.PROPOSED, None)
    late = NOW + timedelta(days=200)
    after = orders.get(opened(world, "ap-1", "filter_replacement", late, origin=Origin.AUTO))
    assert (after.state, after.package_id) == (State.PROPOSED, None)


def test_a_package_visit_is_booked_in_the_customers_preferred_days_and_hours(
    world: Database,
) -> None:
    [wang] = Packages(world).find(device_ids=["ap-2"])
    Packages(world).change(wang.id, preferred=Preferred(("sat",), "14:00", "17:00"))
    order = accepted(world, "ap-2", "filter_replacement", NOW)
    booked = Appointments(WorkOrders(world)).book_filter_packages(now=NOW)
    local = booked[order].start.astimezone(SHANGHAI)
    assert local.strftime("%a") == "Sat" and "14:00" <= f"{local:%H:%M}" <= "17:00"
    assert WorkOrders(world).get(order).state is State.SCHEDULED


def test_renewal_reminders_go_once_and_within_the_weekly_cap(world: Database) -> None:
    plans(world, ONE)  # six months: reminded a month before it ends
    package, _ = sell(world, "ap-1", "p-1x", "s-1")
    packages_ = Packages(world)
    assert packages_.remind_renewals(now=NOW) == []  # five months left
    near = NOW + timedelta(days=160)
    assert package.id in packages_.remind_renewals(now=near)
    assert package.id not in packages_.remind_renewals(now=near + timedelta(days=1))
    with world.engine.connect() as conn:
        [msg] = conn.execute(
            sa.select(notifications).where(
                notifications.c.kind == "package_renewal", notifications.c.customer_id == "c-app"
            )
        ).all()
    assert msg.data["ends_on"] == package.ends_on.isoformat()
    inbox = Inbox()
    report = asyncio.run(Outbox(world, {"*": inbox}, NotifyPolicy(weekly_cap=0)).deliver(near))
    assert inbox.got == [] and report.suppressed >= 1  # a proactive message: capped
    # a renewed package is not reminded
    plans(world, YEARLY)
    other, _ = sell(world, "ap-3", "p-2x", "s-3")
    packages_.renew(other.id, sale_id="s-4", sold_by="agent", channel="agent", now=NOW)
    assert other.id not in packages_.remind_renewals(now=NOW + timedelta(days=350))


def test_a_wangs_package_is_his_alone(world: Database) -> None:
    assert [p.device_id for p in Packages(world).find(customer_id="c-sms")] == ["wp-1", "ap-2"]
    assert SelfService(world).preferences("c-sms").filter_package
    assert not SelfService(world).preferences("c-app").filter_package


# -- do it yourself --------------------------------------------------------------------
def diy_job(world: Database) -> int:
    [wang] = Packages(world).find(device_ids=["ap-2"])
    Packages(world).change(wang.id, fulfilment=Fulfilment.DIY)
    order = WorkOrders(world).get(
        opened(world, "ap-2", "filter_replacement", NOW, origin=Origin.AUTO)
    )
    assert (order.state, order.fulfilment) == (State.OPEN, "diy")
    return order.id


def stock(world: Database) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(outlet_stock.c.qty).where(outlet_stock.c.sku == "AP-HEPA-01")
            ).scalar_one()
        )


def test_a_diy_replacement_is_shipped_not_dispatched_and_closed_when_fitted(
    world: Database,
) -> None:
    order = diy_job(world)
    assert Dispatcher(world).run([order], now=NOW).assigned == 0  # nobody to send
    with pytest.raises(NotDiy, match="give the carrier"):
        Diy(world).ship(order, carrier=" ", tracking="", by="ops")
    before = stock(world)
    shipped = Diy(world).ship(order, carrier="SF", tracking="SF123", by="ops", now=NOW)
    assert shipped.state is State.IN_PROGRESS and stock(world) == before - 1
    with pytest.raises(NotDiy, match="only an open diy job"):
        Diy(world).ship(order, carrier="SF", tracking="SF124", by="ops", now=NOW)
    done, bill = Diy(world).fitted(order, by="device", how="test", now=NOW + timedelta(days=2))
    assert done.state is State.CLOSED and done.commission_cents == 0
    assert [(x.cents, x.payer) for x in bill.lines] == [(29900, "package")]
    assert bill.customer_cents == 0
    with world.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(sa.select(notifications.c.kind))]
        fitted = conn.execute(
            sa.select(filter_replacements).where(filter_replacements.c.order_id == order)
        ).all()
    assert "filter_shipped" in kinds and "completed" in kinds and "job_opened" not in kinds
    assert len(fitted) == 1  # the filter's wear restarts from the fitting
    assert order not in [d.order_id for d in Callbacks(WorkOrders(world)).due()]


def test_a_visit_job_is_not_shipped_and_an_empty_outlet_cannot_ship(world: Database) -> None:
    visit = opened(world, "ap-2", "filter_replacement", NOW, origin=Origin.AUTO)
    with pytest.raises(NotDiy, match="a technician's visit"):
        Diy(world).ship(visit, carrier="SF", tracking="1", by="ops", now=NOW)
    WorkOrders(world).transition(visit, State.CANCELLED, actor="ops", reason="t", now=NOW)
    order = diy_job(world)
    with world.engine.begin() as conn:
        conn.execute(outlet_stock.update().values(qty=0))
    with pytest.raises(OutOfStock, match="restock"):
        Diy(world).ship(order, carrier="SF", tracking="1", by="ops", now=NOW)
    assert WorkOrders(world).get(order).state is State.OPEN


def test_the_customer_saying_they_fitted_it_closes_the_shipped_job(world: Database) -> None:
    order = diy_job(world)
    Diy(world).ship(order, carrier="SF", tracking="SF9", by="ops", now=NOW)
    SelfService(world).replaced_filter(
        "ap-2", "main", stages=["main"], customer_id="c-sms", now=NOW + timedelta(days=1)
    )
    assert WorkOrders(world).get(order).state is State.CLOSED
    with world.engine.connect() as conn:
        rows = conn.execute(
            sa.select(filter_replacements).where(filter_replacements.c.device_id == "ap-2")
        ).all()
    assert [r.order_id for r in rows] == [order]  # one replacement, the job's


HOURS_DUE = {
    "id": "hepa_due",
    "device_type": "purifier",
    "title": "HEPA due",
    "problem_kind": "filter_replacement",
    "when": {"threshold": {"metric": "filter_used_hours", "above": 2000, "clear": 100}},
    "work_order": {"open": "review", "priority": 1},
}


async def test_the_device_reporting_a_new_filter_completes_its_diy_job(
    world: Database, tmp_path: Path
) -> None:
    [wang] = Packages(world).find(device_ids=["ap-2"])
    Packages(world).change(wang.id, fulfilment=Fulfilment.DIY)
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        ev = Evaluator(db=world, store=store, catalog=catalog(HOURS_DUE))
        await feed(store, world, "ap-2", "purifier", NOW, filter_used_hours=2100.0)
        assert (await ev.run_pass(NOW)).fired == 1
        order = WorkOrders(world).live_for("ap-2", "filter_replacement")
        assert order is not None
        assert (order.state, order.fulfilment) == (State.OPEN, "diy")  # no review
        Diy(world).ship(order.id, carrier="SF", tracking="SF1", by="ops", now=NOW)
        later = NOW + timedelta(days=3)
        await feed(store, world, "ap-2", "purifier", later, filter_used_hours=2.0)  # counter reset
        assert (await ev.run_pass(later)).resolved == 1
    done = WorkOrders(world).get(order.id)
    assert done.state is State.CLOSED and done.customer_cents == 0
    assert "the device reported it" in WorkOrders(world).history(order.id)[-2].reason


PREDICTED = {
    "id": "purifier_main_predicted",
    "device_type": "purifier",
    "title": "Filter predicted spent within two weeks",
    "problem_kind": "filter_replacement",
    "when": {
        "prediction": {
            "model": "filter_life", "output": "days_to_exhaustion_main", "below": 14, "clear": 28,
        }
    },
    "work_order": {"open": "review", "priority": 1},
}  # fmt: skip


async def test_a_predicted_replacement_under_a_package_closes_with_no_charge_and_no_review(
    world: Database, tmp_path: Path
) -> None:
    """From the filter-life prediction to a closed job: the package's customer is not
    asked to review, pick a slot or pay."""
    from fleet.predictions import PredictedExhaustion, Predictions
    from rules.outputs import FilterLifeOutputs
    from service.catalog import in_force
    from service.completion import Completion, Fee, visit_report

    now = datetime.now(UTC)
    Predictions(world).record(
        [PredictedExhaustion("ap-2", "main", now + timedelta(days=5), 0.8, "filter-life")]
    )
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        await feed(store, world, "ap-2", "purifier", now, pm25=12.0)
        ev = Evaluator(
            db=world, store=store, catalog=catalog(PREDICTED), outputs=FilterLifeOutputs(world)
        )
        assert (await ev.run_pass(now)).fired == 1
    orders = WorkOrders(world)
    order = orders.live_for("ap-2", "filter_replacement")
    assert order is not None and order.state is State.OPEN and order.package_id is not None
    Dispatcher(world).run([order.id])
    Dispatcher(world).accept(order.id, "tech-1")
    slot = Appointments(orders).book_filter_packages()[order.id]  # nobody picked it
    orders.transition(order.id, State.IN_PROGRESS, actor="tech-1", now=slot.start)
    job = orders.get(order.id)
    _, bill = Completion(orders, tmp_path / "photos").complete(
        order.id,
        visit_report(job, "tech-1", "SN-AP-2", None, profiles=in_force(world),
                     fees=[Fee("Call-out", 4900)]),
        now=slot.start + timedelta(hours=1),
    )  # fmt: skip
    assert bill.total_cents > 0 and bill.customer_cents == 0
    Callbacks(orders).rate(order.id, 5, now=slot.start + timedelta(hours=3))
    done = orders.get(order.id)
    assert done.state is State.CLOSED and done.customer_cents == 0
    actions = [e.action for e in orders.history(order.id)]
    assert "approve" not in actions and actions[0] == "open"
