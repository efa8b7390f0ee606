"""People ask for jobs: a customer in the app for their own device, a call-centre agent
for the customer on the line (found by phone, serial or address). Each report lands in
the one queue: open at once, the customer told at once, one live job per device and
problem however many ask and from whichever channel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from fastapi.testclient import TestClient

from db.database import Database
from db.tables import notifications, work_order_evidence, work_orders
from tests.api.test_devices import bearer


def _report(client: TestClient, key: str, **body: object) -> tuple[int, dict[str, object]]:
    r = client.post("/api/v1/orders", headers=bearer(key), json=body)
    return r.status_code, r.json()


def test_a_customer_reports_a_problem_on_their_device_and_hears_at_once(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    status, body = _report(
        client,
        keys["li"],
        device_id="ap-1",
        problem_kind="motor_wear",
        description="It rattles at speed 3",
        photos=["https://photos.example.com/a.jpg"],
        preferred_time="weekday mornings",
    )
    assert status == 201, body
    order = body["order"]
    assert isinstance(order, dict)
    assert body["created"] is True
    assert (order["origin"], order["state"], order["title"]) == ("app", "open", "Fan motor worn")
    with world.engine.connect() as conn:
        told = conn.execute(
            sa.select(notifications.c.customer_id, notifications.c.kind).where(
                notifications.c.order_id == order["id"]
            )
        ).all()
        evidence = conn.execute(
            sa.select(work_order_evidence.c.data).where(
                work_order_evidence.c.order_id == order["id"]
            )
        ).scalar_one()
    assert told == [("c-app", "job_opened")]
    assert evidence["photos"] == ["https://photos.example.com/a.jpg"]
    assert evidence["reported_by"] == "customer:c-app"
    assert evidence["preferred_time"] == "weekday mornings"


def test_what_may_be_reported_is_what_the_devices_profile_names(
    client: TestClient, keys: dict[str, str]
) -> None:
    choices = client.get("/api/v1/devices/wp-1/problems", headers=bearer(keys["wang"])).json()
    kinds = [c["kind"] for c in choices]
    assert "filter_replacement_ro" in kinds and "leak" in kinds and "inspection" in kinds
    assert "refrigerant_leak" not in kinds  # an air conditioner's
    status, body = _report(client, keys["wang"], device_id="wp-1", problem_kind="refrigerant_leak")
    assert status == 422
    assert "not one a water_purifier can have" in str(body["detail"])
    assert "leak" in str(body["detail"])  # it says what to choose instead


def test_another_customers_device_is_not_found_and_opens_nothing(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    status, body = _report(client, keys["li"], device_id="ap-2", problem_kind="inspection")
    assert status == 404, body
    assert (
        client.get("/api/v1/devices/ap-2/problems", headers=bearer(keys["li"])).status_code == 404
    )
    status, _ = _report(
        client, keys["li"], device_id="ap-1", problem_kind="inspection", channel="phone"
    )
    assert status == 422  # a customer cannot pose as the call centre
    status, _ = _report(client, keys["zhang"], device_id="ap-1", problem_kind="inspection")
    assert status == 403  # a technician does not open jobs
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(work_orders)).scalar() == 0


def test_an_agent_finds_the_caller_by_phone_serial_or_address_and_opens_the_job_for_them(
    client: TestClient, keys: dict[str, str]
) -> None:
    ops = bearer(keys["ops"])
    by_phone = client.get("/api/v1/devices", params={"q": "+86138000"}, headers=ops).json()
    assert sorted(d["id"] for d in by_phone) == ["ap-2", "wp-1"]
    by_serial = client.get("/api/v1/devices", params={"q": "SN-AC"}, headers=ops).json()
    assert [d["id"] for d in by_serial] == ["ac-1"]
    by_address = client.get("/api/v1/devices", params={"q": "kangjian"}, headers=ops).json()
    assert [d["id"] for d in by_address] == ["ap-3"]
    status, body = _report(
        client,
        keys["ops"],
        device_id="wp-1",
        problem_kind="leak",
        contact="Mrs Wang, +8613800000000",
    )
    assert status == 201, body
    order = body["order"]
    assert isinstance(order, dict)
    assert (order["origin"], order["state"]) == ("phone", "open")
    # an agent limited to a region cannot open jobs outside it
    status, _ = _report(client, keys["ops-t2"], device_id="ap-1", problem_kind="inspection")
    assert status == 404


def test_many_reports_of_one_problem_at_once_from_every_channel_open_one_job(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    def report(i: int) -> tuple[int, dict[str, object]]:
        key = keys["wang"] if i % 2 else keys["ops"]
        return _report(
            client, key, device_id="ap-2", problem_kind="motor_wear", description=f"#{i}"
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(report, range(16)))
    assert sorted(s for s, _ in results) == [200] * 15 + [201]
    ids = {b["order"]["id"] for _, b in results}  # type: ignore[index]
    assert len(ids) == 1
    with world.engine.connect() as conn:
        live = conn.execute(
            sa.select(work_orders.c.id, work_orders.c.evidence_count).where(
                work_orders.c.device_id == "ap-2"
            )
        ).all()
        told = conn.execute(
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(notifications.c.order_id == live[0].id)
        ).scalar()
    assert live == [(ids.pop(), 16)]  # every report kept as evidence on the one job
    assert told == 1  # the customer hears once, not sixteen times


def test_a_shops_order_opens_the_installation_once_however_often_it_is_sent(
    client: TestClient, keys: dict[str, str]
) -> None:
    body = {
        "shop_id": "suning-xuhui",
        "shop_order_id": "SO-77",
        "customer_name": "Zhao",
        "phone": "+8613911112222",
        "device_type": "purifier",
        "purchased_on": "2026-12-05",
        "territory_id": "t-1",
        "address": "8 Tianlin Rd",
    }
    ops = bearer(keys["ops"])
    first = client.post("/api/v1/orders/shop", json=body, headers=ops)
    assert first.status_code == 201, first.text
    assert first.json()["order"]["problem_kind"] == "installation"
    assert first.json()["order"]["origin"] == "shop"
    again = client.post("/api/v1/orders/shop", json=body, headers=ops)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    unknown = {**body, "shop_order_id": "SO-78", "territory_id": "t-9"}
    bad = client.post("/api/v1/orders/shop", json=unknown, headers=ops)
    assert bad.status_code == 404 and "t-9" in bad.text
    assert (
        client.post("/api/v1/orders/shop", json=body, headers=bearer(keys["li"])).status_code == 403
    )
