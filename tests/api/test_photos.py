"""Photos at intake, over HTTP: a customer attaches pictures to the job they reported and
everyone who may see the job (its technician, ops) can list and fetch them; nobody else
can. An image is judged by its bytes, the same picture twice is kept once, and a job
holds at most ten; a finished job takes none."""

from __future__ import annotations

from fastapi.testclient import TestClient

from db.database import Database
from service.dispatch import Dispatcher
from service.lifecycle import State
from service.orders import WorkOrders
from tests.api.test_attacks import bearer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 64


def report(client: TestClient, key: str) -> int:
    r = client.post(
        "/api/v1/orders",
        json={"device_id": "ap-1", "problem_kind": "inspection", "description": "it leaks"},
        headers=bearer(key),
    )
    assert r.status_code in (200, 201), r.text
    return int(r.json()["order"]["id"])


def test_the_customers_photos_go_with_their_job_and_only_to_who_sees_it(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    li, wang = bearer(keys["li"]), bearer(keys["wang"])
    order = report(client, keys["li"])
    files = [
        ("photos", ("leak.png", PNG, "image/png")),
        ("photos", ("code.jpg", JPEG, "image/jpeg")),
    ]
    r = client.post(f"/api/v1/orders/{order}/photos", files=files, headers=li)
    assert r.status_code == 201, r.text
    got = r.json()
    assert [(p["stage"], p["content_type"], p["added_by"]) for p in got] == [
        ("intake", "image/png", "li"), ("intake", "image/jpeg", "li"),
    ]  # fmt: skip
    image = client.get(got[0]["url"], headers=li)
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    # the same picture again is kept once
    again = client.post(f"/api/v1/orders/{order}/photos", files=files[:1], headers=li)
    assert again.status_code == 201 and len(again.json()) == 2
    # another customer sees neither the list nor a photo, nor can add one
    assert client.get(f"/api/v1/orders/{order}/photos", headers=wang).status_code == 404
    assert client.get(got[0]["url"], headers=wang).status_code == 404
    assert (
        client.post(f"/api/v1/orders/{order}/photos", files=files, headers=wang).status_code == 404
    )
    # the job's technician and ops do
    Dispatcher(world).run([order])
    zhang = bearer(keys["zhang"])
    assert WorkOrders(world).get(order).technician_id == "tech-1"
    assert len(client.get(f"/api/v1/orders/{order}/photos", headers=zhang).json()) == 2
    assert client.get(got[1]["url"], headers=bearer(keys["ops"])).content == JPEG
    assert client.get(f"/api/v1/orders/{order}/photos/999999", headers=li).status_code == 404


def test_what_is_not_a_photo_or_one_too_many_is_refused_and_says_why(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    li = bearer(keys["li"])
    order = report(client, keys["li"])
    fake = [("photos", ("leak.jpg", b"#!/bin/sh\nrm -rf /\n", "image/jpeg"))]
    r = client.post(f"/api/v1/orders/{order}/photos", files=fake, headers=li)
    assert r.status_code == 422 and "not a JPEG, PNG or WebP" in r.json()["detail"]
    many = [("photos", (f"{i}.png", PNG + bytes([i]), "image/png")) for i in range(11)]
    r = client.post(f"/api/v1/orders/{order}/photos", files=many, headers=li)
    assert r.status_code == 409 and "at most 10" in r.json()["detail"]
    assert client.get(f"/api/v1/orders/{order}/photos", headers=li).json() == []  # none of them
    WorkOrders(world).transition(order, State.CANCELLED, actor="ops", reason="t")
    r = client.post(f"/api/v1/orders/{order}/photos", files=many[:1], headers=li)
    assert r.status_code == 409 and "live job" in r.json()["detail"]
