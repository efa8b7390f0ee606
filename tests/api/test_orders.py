"""Ops review the jobs the rules and models proposed: filter the queue, approve (and the
job is dispatched), reject with a reason, in bulk; technicians see and answer their own.
Roles are checked (403) and scope hides what is not yours (404)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from db.database import Database
from service.lifecycle import Origin
from tests.api.test_devices import bearer
from tests.service.helpers import opened

NOW = datetime.now(UTC)


def test_only_ops_and_admins_see_the_queue(client: TestClient, keys: dict[str, str]) -> None:
    for who in ("li", "zhang"):
        r = client.get("/api/v1/orders", headers=bearer(keys[who]))
        assert r.status_code == 403
        assert "needs the role ops or admin" in r.json()["detail"]
    assert client.get("/api/v1/orders", headers=bearer(keys["ops"])).status_code == 200


def test_ops_approve_a_proposed_auto_job_and_it_is_dispatched(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    auto = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    mine = opened(world, "ap-2", "motor_wear", NOW, origin=Origin.APP)
    ops = bearer(keys["ops"])
    queue = client.get("/api/v1/orders?state=proposed&origin=auto", headers=ops).json()
    assert [o["id"] for o in queue] == [auto]  # the app's own request is not proposed
    approved = client.post(f"/api/v1/orders/{auto}/approve", headers=ops)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "assigned"
    assert approved.json()["technician_id"] == "tech-1"
    again = client.post(f"/api/v1/orders/{auto}/approve", headers=ops)
    assert again.status_code == 409 and "assigned" in again.json()["detail"]
    assert client.post(f"/api/v1/orders/{mine}/reject", headers=ops).status_code == 422


def test_reject_needs_a_reason_and_bulk_approve_reports_each_refusal(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    a = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    b = opened(world, "wp-1", "leak", NOW, origin=Origin.AUTO)
    c = opened(world, "ap-3", "filter_replacement", NOW, origin=Origin.AUTO)
    ops = bearer(keys["ops"])
    no_reason = client.post(f"/api/v1/orders/{a}/reject", headers=ops, json={})
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["loc"] == ["body", "reason"]
    rejected = client.post(f"/api/v1/orders/{a}/reject", headers=ops, json={"reason": "dup"})
    assert rejected.json()["state"] == "rejected"
    bulk = client.post("/api/v1/orders/bulk/approve", headers=ops, json={"ids": [a, b, c, 999]})
    assert bulk.status_code == 200
    body = bulk.json()
    assert sorted(o["id"] for o in body["done"]) == [b, c]
    assert set(body["refused"]) == {str(a), "999"}
    assert "not found" in body["refused"]["999"]


def test_ops_limited_to_a_territory_cannot_touch_another(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    t1 = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    t2 = opened(world, "ap-3", "filter_replacement", NOW, origin=Origin.AUTO)
    mine = bearer(keys["ops-t2"])
    assert [o["id"] for o in client.get("/api/v1/orders", headers=mine).json()] == [t2]
    assert client.post(f"/api/v1/orders/{t1}/approve", headers=mine).status_code == 404


def test_a_technician_sees_and_answers_only_their_own_jobs(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    job = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    other = opened(world, "ap-2", "filter_replacement", NOW, origin=Origin.AUTO)
    client.post(f"/api/v1/orders/{job}/approve", headers=bearer(keys["ops"]))
    tech = bearer(keys["zhang"])
    assert [o["id"] for o in client.get("/api/v1/jobs", headers=tech).json()] == [job]
    assert client.post(f"/api/v1/jobs/{other}/accept", headers=tech).status_code == 404
    accepted = client.post(f"/api/v1/jobs/{job}/accept", headers=tech)
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    assert client.get("/api/v1/jobs", headers=bearer(keys["ops"])).status_code == 403
