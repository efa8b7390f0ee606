"""After the visit, through the API with each role's own key: an agent works the
callback queue (nobody answers, then the customer is not satisfied), which holds the
technician's commission and opens a complaint the customer can follow in the app; ops
resolve it and the settlement says what that did to the money. Customers complain about
their own jobs and devices only, and see only their own cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from db.database import Database
from service.completion import Completion, CompletionReport, Fee, Outcome
from service.lifecycle import State
from service.orders import WorkOrders
from tests.api.test_devices import bearer
from tests.service.helpers import accepted

NOW = datetime.now(UTC) - timedelta(hours=2)


def completed(
    world: Database,
    tmp_path: Path,
    device: str,
    serial: str,
    problem: str = "filter_replacement",
    fees: tuple[Fee, ...] = (),
) -> int:
    order = accepted(world, device, problem, NOW)
    orders = WorkOrders(world)
    for to in (State.SCHEDULED, State.IN_PROGRESS):
        orders.transition(order, to, actor="tech-1", now=NOW)
    Completion(orders, tmp_path / "photos").complete(
        order,
        CompletionReport(
            technician_id="tech-1", outcome=Outcome.FIXED, serial=serial, fees=list(fees)
        ),
        now=NOW,
    )
    return order


def test_an_unhappy_callback_holds_the_money_until_ops_resolve_the_complaint(
    client: TestClient, keys: dict[str, str], world: Database, tmp_path: Path
) -> None:
    order = completed(world, tmp_path, "ap-2", "SN-AP-2")  # Wang's purifier
    ops, wang = bearer(keys["ops"]), bearer(keys["wang"])

    # closing a job by hand would skip the callback that decides the money
    by_hand = client.post(f"/api/v1/orders/{order}/transition", json={"to": "closed"}, headers=ops)
    assert by_hand.status_code == 409 and "/callback" in by_hand.json()["detail"]

    queue = client.get("/api/v1/callbacks", headers=ops)
    assert queue.status_code == 200, queue.text
    [due] = queue.json()
    assert (due["order_id"], due["phone"], due["attempts"]) == (order, "+8613800000000", 0)

    for n in (1, 2):
        r = client.post(
            f"/api/v1/orders/{order}/callback", json={"outcome": "no_answer"}, headers=ops
        )
        assert r.status_code == 200, r.text
        assert (r.json()["outcome"], r.json()["attempts"]) == (None, n)
        assert r.json()["order"]["state"] == "completed"
    bad = client.post(f"/api/v1/orders/{order}/callback", json={"outcome": "angry"}, headers=ops)
    assert bad.status_code == 422 and "outcome" in bad.text
    r = client.post(
        f"/api/v1/orders/{order}/callback",
        json={"outcome": "not_satisfied", "stars": 2, "recommend": 3, "comment": "filter rattles"},
        headers=ops,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["outcome"], body["order"]["state"]) == ("not_satisfied", "closed")
    case = body["complaint"]
    assert (case["source"], case["level"], case["technician_id"]) == (
        "callback",
        "outlet",
        "tech-1",
    )
    assert client.get("/api/v1/callbacks", headers=ops).json() == []

    lines = client.get("/api/v1/settlement", params={"items": True}, headers=ops).json()
    [line] = [x for x in lines if x["order_id"] == order]
    assert line["status"] == "held"
    assert line["reason"] == f"callback: not satisfied; complaint {case['id']} open at outlet level"

    # the customer follows their case; they cannot resolve it
    mine = client.get("/api/v1/complaints", headers=wang).json()
    assert [c["id"] for c in mine] == [case["id"]]
    detail = client.get(f"/api/v1/complaints/{case['id']}", headers=wang).json()
    assert [e["action"] for e in detail["history"]] == ["opened"]
    verdict = {"resolution": "bracket refitted", "upheld": True}
    path = f"/api/v1/complaints/{case['id']}/resolution"
    assert client.post(path, json=verdict, headers=wang).status_code == 403
    done = client.post(path, json=verdict, headers=ops)
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["upheld"]) == ("resolved", True)
    again = client.post(path, json=verdict, headers=ops)
    assert again.status_code == 422 and "resolved already" in again.json()["detail"]

    csv = client.get("/api/v1/settlement", params={"items": True, "format": "csv"}, headers=ops)
    assert csv.headers["content-type"].startswith("text/csv")
    assert f",forfeit,{datetime.now(UTC):%Y-%m-%d}" in csv.text
    assert "upheld: bracket refitted" in csv.text
    [row] = client.get("/api/v1/settlement", headers=ops).json()
    assert (row["forfeit"], row["held"], row["jobs_payable"]) == (1, 0, 0)


def test_customers_complain_about_their_own_jobs_and_devices_only(
    client: TestClient, keys: dict[str, str], world: Database, tmp_path: Path
) -> None:
    order = completed(world, tmp_path, "ap-1", "SN-AP-1")  # Li's purifier
    li, wang = bearer(keys["li"]), bearer(keys["wang"])

    first = client.post(
        "/api/v1/complaints", json={"order_id": order, "description": "dusty floor"}, headers=li
    )
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/api/v1/complaints/{first.json()['id']}"
    assert (first.json()["source"], first.json()["customer_id"]) == ("app", "c-app")
    second = client.post(
        "/api/v1/complaints", json={"order_id": order, "description": "and rude"}, headers=li
    )
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]

    about_device = client.post(
        "/api/v1/complaints", json={"device_id": "ac-1", "description": "smells"}, headers=li
    )
    assert about_device.status_code == 201 and about_device.json()["outlet_id"] == "o-1"
    both = client.post(
        "/api/v1/complaints",
        json={"order_id": order, "device_id": "ac-1", "description": "x"},
        headers=li,
    )
    assert both.status_code == 422 and "device_id" in both.text  # a job or a device: one
    neither = client.post("/api/v1/complaints", json={"description": "x"}, headers=li)
    assert neither.status_code == 422 and "order_id" in neither.text

    # Wang: Li's job, Li's device and Li's cases are not found
    for body in (
        {"order_id": order, "description": "x"},
        {"device_id": "ac-1", "description": "x"},
    ):
        assert client.post("/api/v1/complaints", json=body, headers=wang).status_code == 404
    assert client.get("/api/v1/complaints", headers=wang).json() == []
    assert client.get(f"/api/v1/complaints/{first.json()['id']}", headers=wang).status_code == 404
    # the callback queue and the settlement are ops' work
    for key in ("li", "zhang"):
        assert client.get("/api/v1/callbacks", headers=bearer(keys[key])).status_code == 403
        assert client.get("/api/v1/settlement", headers=bearer(keys[key])).status_code == 403
    r = client.post(f"/api/v1/orders/{order}/callback", json={"outcome": "satisfied"}, headers=li)
    assert r.status_code == 403

    # the app's own rating is the callback: 4 stars and a 9 pay the job
    rated = client.post(
        f"/api/v1/orders/{order}/rating", json={"stars": 4, "recommend": 9}, headers=li
    )
    assert rated.status_code == 200, rated.text
    lines = client.get(
        "/api/v1/settlement", params={"items": True}, headers=bearer(keys["ops"])
    ).json()
    [line] = [x for x in lines if x["order_id"] == order]
    assert (line["status"], line["reason"]) == ("payable", "callback: satisfied, rated 4/5")


def test_ops_read_the_warranty_claims_the_bills_put_on_the_maker(
    client: TestClient, keys: dict[str, str], world: Database, tmp_path: Path
) -> None:
    from db.tables import device_sites
    from service.registry import ServiceRegistry, parse_doc

    ServiceRegistry(world).load(
        parse_doc({"warranties": [{"device_type": "purifier", "parts_months": 24,
                                   "labour_months": 12}]})
    )  # fmt: skip
    with world.engine.begin() as conn:
        conn.execute(
            device_sites.update()
            .where(device_sites.c.device_id == "ap-1")
            .values(purchased_on=(NOW - timedelta(days=60)).date())
        )
    order = completed(world, tmp_path, "ap-1", "SN-AP-1", "inspection", (Fee("Visit", 6000),))
    assert WorkOrders(world).get(order).customer_cents == 0  # the maker pays the visit
    ops = bearer(keys["ops"])
    [row] = client.get("/api/v1/warranty-claims", headers=ops).json()
    assert (row["outlet_id"], row["jobs"], row["labour_cents"]) == ("o-1", 1, 6000)
    lines = client.get(
        "/api/v1/warranty-claims", params={"items": True, "format": "csv"}, headers=ops
    )
    assert lines.headers["content-type"].startswith("text/csv")
    assert f"{order},o-1,ap-1,inspection," in lines.text and ",labour: Visit,6000" in lines.text
    assert client.get("/api/v1/warranty-claims", headers=bearer(keys["li"])).status_code == 403
