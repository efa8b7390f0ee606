"""Installation requests from the app, over HTTP: the customer's new unit is registered
to them at their address on record and its installation job opens at once; the same
request, however often or concurrently sent, is one job; a customer with no address on
record is told what to give; only a customer asks for themselves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from db.database import Database
from service.orders import WorkOrders
from tests.api.test_attacks import bearer

ASK = {
    "request_id": "app-77", "device_type": "water_purifier", "model": None,
    "serial": "SN-NEW-1", "purchased_on": "2026-12-01", "preferred_time": "Sat morning",
}  # fmt: skip


def test_a_customer_asks_for_an_installation_once_however_often_they_send_it(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    li = bearer(keys["li"])
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _: client.post("/api/v1/me/installations", json=ASK, headers=li), range(6)
            )
        )
    assert sorted(r.status_code for r in answers) == [200] * 5 + [201], [r.text for r in answers]
    assert len({r.json()["order"]["id"] for r in answers}) == 1
    got = answers[0].json()
    assert got["customer_id"] == "c-app"
    order = WorkOrders(world).get(got["order"]["id"])
    assert (order.problem_kind, order.origin.value, order.state.value) == (
        "installation", "app", "open"
    )  # fmt: skip
    assert order.territory_id == "t-1"  # Li's address on record
    mine = client.get("/api/v1/devices", headers=li).json()
    assert got["device_id"] in [d["id"] for d in mine]
    # the job is hers to see; Wang's is not
    assert client.get(f"/api/v1/orders/{order.id}", headers=li).status_code == 200
    assert client.get(f"/api/v1/orders/{order.id}", headers=bearer(keys["wang"])).status_code == 404


def test_what_an_installation_request_needs_is_said(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    li = bearer(keys["li"])
    r = client.post("/api/v1/me/installations", json={**ASK, "device_type": "toaster"}, headers=li)
    assert r.status_code == 422 and "unknown device type 'toaster'" in r.json()["detail"]
    r = client.post("/api/v1/me/installations", json={**ASK, "colour": "red"}, headers=li)
    assert r.status_code == 422
    ops = bearer(keys["ops"])
    assert client.post("/api/v1/me/installations", json=ASK, headers=ops).status_code == 403
    with world.engine.begin() as conn:  # a customer with no device yet, so no address
        from db.tables import customers

        conn.execute(customers.insert().values(
            id="c-new", name="Zhou", tier="standard", channel="app", timezone="Asia/Shanghai",
            language="zh-CN",
        ))  # fmt: skip
    from api.accounts import Accounts, Role

    zhou = bearer(
        Accounts(world).create("zhou", name="Zhou", role=Role.CUSTOMER, customer_id="c-new").key
    )
    r = client.post("/api/v1/me/installations", json=ASK, headers=zhou)
    assert r.status_code == 422 and "territory_id" in r.json()["detail"]
    r = client.post(
        "/api/v1/me/installations",
        json={**ASK, "address": "9 Tianlin Rd", "territory_id": "t-1"},
        headers=zhou,
    )
    assert r.status_code == 201 and r.json()["customer_id"] == "c-new"
