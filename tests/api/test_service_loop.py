"""The whole service loop through the API, each step by the role that takes it: a
customer books the visit the job needs, the technician sets off, starts and completes it
with parts and a photo, the customer rates it and it closes. Around it: ops assign,
reassign, hold and resume; customers' own settings and "I replaced it myself"; the
telemetry history; signing in with a password. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from api.accounts import Accounts
from db.database import Database
from db.tables import device_commands, filter_replacements
from fleet.predictions import PredictedExhaustion, Predictions
from service.lifecycle import Origin
from tests.api.test_devices import bearer
from tests.service.helpers import accepted, opened

NOW = datetime.now(UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def test_book_visit_set_off_start_complete_with_a_photo_rate_and_close(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    order = accepted(world, "ap-1", "filter_replacement", NOW)
    li, zhang = bearer(keys["li"]), bearer(keys["zhang"])

    slots = client.get(f"/api/v1/orders/{order}/slots", headers=li)
    assert slots.status_code == 200, slots.text
    assert slots.json() and "Asia/Shanghai" in slots.json()[0]["label"]
    first, second = slots.json()[0]["start"], slots.json()[1]["start"]
    booked = client.post(f"/api/v1/orders/{order}/appointment", json={"start": first}, headers=li)
    assert booked.status_code == 200, booked.text
    assert booked.json()["state"] == "scheduled"
    moved = client.post(f"/api/v1/orders/{order}/appointment", json={"start": second}, headers=li)
    assert moved.status_code == 200 and moved.json()["scheduled_start"][:16] == second[:16]
    naive = client.post(
        f"/api/v1/orders/{order}/appointment", json={"start": "2030-01-01T10:00:00"}, headers=li
    )
    assert naive.status_code == 409 and "offset" in naive.json()["detail"]

    eta = (datetime.fromisoformat(second) - timedelta(minutes=10)).isoformat()
    way = client.post(f"/api/v1/jobs/{order}/on-the-way", json={"eta": eta}, headers=zhang)
    assert way.status_code == 200, way.text
    started = client.post(f"/api/v1/jobs/{order}/start", headers=zhang)
    assert started.status_code == 200 and started.json()["state"] == "in_progress"
    assert [j["id"] for j in client.get("/api/v1/jobs/today", headers=zhang).json()] == [order]

    report = {
        "outcome": "fixed",
        "serial": "SN-AP-1",
        "parts": [{"sku": "AP-HEPA-01"}],
        "fees": [{"item": "visit", "cents": 5000}],
        "filter_found": {"main": 0.95},
    }
    bad_photo = client.post(
        f"/api/v1/jobs/{order}/complete",
        data={"report": json.dumps(report)},
        files=[("photos", ("notes.txt", io.BytesIO(b"hello"), "image/png"))],
        headers=zhang,
    )
    assert bad_photo.status_code == 422 and "not a JPEG, PNG or WebP" in bad_photo.json()["detail"]
    bad_report = client.post(
        f"/api/v1/jobs/{order}/complete",
        data={"report": json.dumps({**report, "outcome": "maybe"})},
        headers=zhang,
    )
    assert bad_report.status_code == 422 and "report.outcome" in bad_report.json()["detail"]
    done = client.post(
        f"/api/v1/jobs/{order}/complete",
        data={"report": json.dumps(report)},
        files=[("photos", ("unit.png", io.BytesIO(PNG), "image/png"))],
        headers=zhang,
    )
    assert done.status_code == 200, done.text
    assert done.json()["order"]["state"] == "completed"
    assert done.json()["total_cents"] == 29900 + 5000

    assert (
        client.post(f"/api/v1/orders/{order}/rating", json={"stars": 6}, headers=li).status_code
        == 422
    )
    rated = client.post(
        f"/api/v1/orders/{order}/rating", json={"stars": 5, "comment": "quick"}, headers=li
    )
    assert rated.status_code == 200 and rated.json()["state"] == "closed"
    again = client.post(f"/api/v1/orders/{order}/rating", json={"stars": 4}, headers=li)
    assert again.status_code == 409 and "callback is done (rated 5/5)" in again.json()["detail"]
    detail = client.get(f"/api/v1/orders/{order}", headers=li).json()
    actions = [h["action"] for h in detail["history"]]
    assert actions[-5:] == ["reschedule", "on_the_way", "start", "complete", "close"]
    assert {h["actor"] for h in detail["history"]} <= {"you", "FleetCare"}
    assert detail["evidence"] == []  # the rules' internals are ops' business


def test_a_customer_cannot_read_or_act_on_anothers_job(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    theirs = accepted(world, "ap-2", "filter_replacement", NOW)  # c-sms's purifier
    li = bearer(keys["li"])
    for method, path, body in [
        ("get", f"/api/v1/orders/{theirs}", None),
        ("get", f"/api/v1/orders/{theirs}/slots", None),
        ("post", f"/api/v1/orders/{theirs}/appointment", {"start": NOW.isoformat()}),
        ("post", f"/api/v1/orders/{theirs}/cancel", {"reason": "not mine"}),
        ("post", f"/api/v1/orders/{theirs}/rating", {"stars": 1}),
        ("get", "/api/v1/devices/ap-2/telemetry", None),
        ("post", "/api/v1/devices/ap-2/filters/main/replaced", None),
    ]:
        r = client.request(method, path, json=body, headers=li)
        assert r.status_code == 404, (path, r.status_code, r.text)
    for method, path in [
        ("post", f"/api/v1/orders/{theirs}/assign"),
        ("post", f"/api/v1/orders/{theirs}/transition"),
        ("post", f"/api/v1/jobs/{theirs}/start"),
        ("get", "/api/v1/alerts"),
        ("get", "/api/v1/dead-letters"),
        ("get", "/api/v1/kpis"),
    ]:
        r = client.request(
            method, path, json={"technician_id": "tech-1", "to": "on_hold"}, headers=li
        )
        assert r.status_code == 403, (path, r.status_code)
    mine = client.get("/api/v1/orders/mine", headers=bearer(keys["wang"])).json()
    assert [o["id"] for o in mine] == [theirs]
    assert client.get("/api/v1/orders/mine", headers=li).json() == []


def test_ops_assign_reassign_hold_and_resume_and_every_move_is_audited(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    ops = bearer(keys["ops"])
    order = opened(world, "ap-1", "filter_replacement", NOW)
    nobody = client.post(
        f"/api/v1/orders/{order}/assign", json={"technician_id": "tech-9"}, headers=ops
    )
    assert nobody.status_code == 404 and "tech-9" in nobody.json()["detail"]
    a = client.post(f"/api/v1/orders/{order}/assign", json={"technician_id": "tech-1"}, headers=ops)
    assert a.status_code == 200 and a.json()["state"] == "assigned"
    held = client.post(
        f"/api/v1/orders/{order}/transition",
        json={"to": "on_hold", "reason": "customer away"},
        headers=ops,
    )
    assert held.status_code == 200 and held.json()["state"] == "on_hold"
    wrong = client.post(f"/api/v1/orders/{order}/transition", json={"to": "proposed"}, headers=ops)
    assert wrong.status_code == 409 and "allowed: resume → open" in wrong.json()["detail"]
    own = client.post(f"/api/v1/orders/{order}/transition", json={"to": "scheduled"}, headers=ops)
    # a well-formed request for a move with a route of its own: a conflict, not bad input
    assert own.status_code == 409 and "/appointment" in own.json()["detail"]
    resumed = client.post(f"/api/v1/orders/{order}/transition", json={"to": "open"}, headers=ops)
    assert resumed.status_code == 200 and resumed.json()["state"] == "assigned"  # re-dispatched
    detail = client.get(f"/api/v1/orders/{order}", headers=ops).json()
    assert [h["action"] for h in detail["history"]][-4:] == ["assign", "hold", "resume", "assign"]
    assert "accept → accepted" in detail["allowed"]


def test_sla_filter_lists_breached_then_at_risk_orders(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    ops = bearer(keys["ops"])
    late = opened(world, "ap-1", "filter_replacement", NOW, due_at=NOW - timedelta(hours=3))
    soon = opened(world, "ap-2", "filter_replacement", NOW, due_at=NOW + timedelta(hours=1))
    opened(world, "ap-3", "filter_replacement", NOW, due_at=NOW + timedelta(days=3))
    ids = lambda q: [o["id"] for o in client.get(f"/api/v1/orders?sla={q}", headers=ops).json()]  # noqa: E731
    assert ids("breached") == [late]
    assert ids("at_risk") == [soon]
    assert client.get("/api/v1/orders?sla=late", headers=ops).status_code == 422
    rejected = client.post(
        "/api/v1/orders/bulk/cancel",
        json={"ids": [late, soon], "reason": "duplicates"},
        headers=ops,
    )
    assert {o["state"] for o in rejected.json()["done"]} == {"cancelled"}


def test_customer_preferences_and_the_filter_they_replaced_themselves(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    li = bearer(keys["li"])
    prefs = client.patch(
        "/api/v1/me/preferences",
        json={"quiet_hours": ["22:00", "07:30"], "channel": "sms"},
        headers=li,
    )
    assert prefs.status_code == 200, prefs.text
    # Li has no filter package on either device (Wang has: see the world)
    assert prefs.json()["quiet_start"] == "22:00" and prefs.json()["filter_package"] is False
    bad = client.patch(
        "/api/v1/me/preferences", json={"quiet_hours": ["25:00", "07:00"]}, headers=li
    )
    assert bad.status_code == 422 and "quiet_hours" in json.dumps(bad.json())
    assert (
        client.patch("/api/v1/me/preferences", json={"colour": "red"}, headers=li).status_code
        == 422
    )
    assert client.get("/api/v1/me/preferences", headers=bearer(keys["ops"])).status_code == 403

    job = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    Predictions(world).record(
        [PredictedExhaustion("ap-1", "main", NOW + timedelta(days=3), 0.9, "filter-life")]
    )
    nope = client.post("/api/v1/devices/ap-1/filters/ro/replaced", headers=li)
    assert nope.status_code == 422 and "has no filter stage 'ro'" in nope.json()["detail"]
    done = client.post("/api/v1/devices/ap-1/filters/main/replaced", headers=li)
    assert done.status_code == 200, done.text
    assert done.json()["cancelled_order"] == job
    health = client.get("/api/v1/devices/ap-1/health", headers=li).json()
    assert health["filters"] == [] and health["open_job"] is None
    with world.engine.connect() as conn:
        assert conn.execute(filter_replacements.select()).first().order_id is None  # type: ignore[union-attr]
        cmd = conn.execute(device_commands.select()).first()
    assert cmd is not None and (cmd.device_id, cmd.cmd, cmd.args) == (
        "ap-1",
        "filter_replaced",
        {"stage": "main"},
    )


def test_sign_in_with_a_password_gives_a_token_the_api_takes(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    Accounts(world).set_password("li", "correct horse battery")
    wrong = client.post("/api/v1/auth/token", data={"username": "li", "password": "nope"})
    assert wrong.status_code == 401
    r = client.post(
        "/api/v1/auth/token", data={"username": "li", "password": "correct horse battery"}
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["customer_id"] == "c-app"
    assert client.get("/api/v1/me", headers=bearer(token[:-4] + "AAAA")).status_code == 401
    for _ in range(12):  # guessing is slowed
        last = client.post("/api/v1/auth/token", data={"username": "li", "password": "x"})
    assert last.status_code == 429 and "Retry-After" in last.headers


def test_telemetry_history_is_downsampled_to_the_points_asked(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    from telemetry.records import Reading

    store = client.app.state.ctx.store  # type: ignore[attr-defined]
    start = NOW - timedelta(hours=10)
    readings = [
        Reading(
            device_id="ap-1",
            device_type="purifier",
            ts=int((start + timedelta(minutes=m)).timestamp() * 1000),
            metrics={"pm25": float(m % 60), "fan_rpm": 900.0},
            seq=m,
            boot=1,
        )
        for m in range(600)
    ]
    assert client.portal is not None
    client.portal.call(store.write, readings)
    li = bearer(keys["li"])
    z = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    q = f"start={z(start)}&end={z(NOW)}"
    r = client.get(f"/api/v1/devices/ap-1/telemetry?{q}&points=20&metric=pm25", headers=li)
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert [s["metric"] for s in series] == ["pm25"] and series[0]["unit"] == "µg/m³"
    assert 18 <= len(series[0]["points"]) <= 21 and series[0]["every_s"] == 1800
    assert all(0 <= p["value"] <= 59 for p in series[0]["points"])
    both = client.get(f"/api/v1/devices/ap-1/telemetry?{q}", headers=li).json()
    assert [s["metric"] for s in both["series"]] == ["pm25", "fan_rpm"]
    bad = client.get("/api/v1/devices/ap-1/telemetry?metric=tds_in_ppm", headers=li)
    # a series this device does not have: not found, saying which it has
    assert bad.status_code == 404 and "pm25" in bad.json()["detail"]
