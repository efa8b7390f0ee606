"""Shop orders for installations: the unit, its owner and site registered and the
installation job opened in one go; idempotent by the shop's own order id, however often
and however concurrently the shop sends it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from db.database import Database
from db.errors import NotFound
from db.tables import device_sites, devices, notifications, work_orders
from service.lifecycle import Origin, State
from service.orders import WorkOrders
from service.shop_orders import ShopOrderIn, ShopOrders, UnknownDeviceType

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def order(**kw: Any) -> ShopOrderIn:
    base: dict[str, Any] = {
        "shop_id": "suning-xuhui",
        "shop_order_id": "SO-1001",
        "customer_name": "Zhao",
        "phone": "+8613911112222",
        "device_type": "water_purifier",
        "model": "WP-600",
        "serial": "SN-WP-NEW",
        "purchased_on": "2026-12-05",
        "territory_id": "t-1",
        "address": "8 Tianlin Rd",
        "preferred_time": "weekend mornings",
    }
    return ShopOrderIn.model_validate({**base, **kw})


def test_a_shop_order_registers_the_unit_and_opens_its_installation(world: Database) -> None:
    got = ShopOrders(WorkOrders(world)).receive(order(), now=NOW)
    assert got.created
    o = got.order
    assert (o.problem_kind, o.origin, o.state) == ("installation", Origin.SHOP, State.OPEN)
    assert o.customer_id == got.customer_id and o.outlet_id == "o-1"
    with world.engine.connect() as conn:
        unit = conn.execute(sa.select(devices).where(devices.c.id == got.device_id)).one()
        site = conn.execute(
            sa.select(device_sites).where(device_sites.c.device_id == got.device_id)
        ).one()
        told = conn.execute(
            sa.select(notifications.c.kind).where(notifications.c.order_id == o.id)
        ).scalars().all()  # fmt: skip
    assert (unit.model, unit.serial) == ("WP-600", "SN-WP-NEW")
    assert site.purchased_on == date(2026, 12, 5)  # where its warranty starts
    assert told == ["job_opened"]
    evidence = WorkOrders(world).evidence(o.id)[0]
    assert evidence["data"]["shop_order_id"] == "SO-1001"


def test_the_same_shop_order_again_is_the_same_job_even_at_once(world: Database) -> None:
    shops = ShopOrders(WorkOrders(world))
    first = shops.receive(order(), now=NOW)
    again = shops.receive(order(address="changed"), now=NOW)
    assert (again.created, again.order.id) == (False, first.order.id)

    def send(_: int) -> tuple[bool, int]:
        got = ShopOrders(WorkOrders(world)).receive(order(shop_order_id="SO-2002"), now=NOW)
        return got.created, got.order.id

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert sum(created for created, _ in results) == 1
    assert len({oid for _, oid in results}) == 1
    with world.engine.connect() as conn:
        jobs = conn.execute(
            sa.select(sa.func.count()).where(work_orders.c.problem_kind == "installation")
        ).scalar_one()
    assert jobs == 2


def test_a_known_phone_is_the_same_customer(world: Database) -> None:
    got = ShopOrders(WorkOrders(world)).receive(order(phone="+8613800000000"), now=NOW)
    assert got.customer_id == "c-sms"  # Wang, already a customer


def test_a_bad_shop_order_says_what_to_fix_and_registers_nothing(world: Database) -> None:
    with pytest.raises(NotFound, match="t-9"):
        ShopOrders(WorkOrders(world)).receive(order(territory_id="t-9"), now=NOW)
    with pytest.raises(UnknownDeviceType, match="unknown device type 'toaster'; one of "):
        ShopOrders(WorkOrders(world)).receive(order(device_type="toaster"), now=NOW)
    with pytest.raises(ValidationError, match="purchased_on"):
        order(purchased_on="last tuesday")
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(work_orders)).scalar_one() == 0
