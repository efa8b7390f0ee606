"""Filter packages over HTTP, from outside: a real server on PostgreSQL, each caller with
their own key. A customer buys for their own device only (the same sale id twice, or at
once, is one package), changes how replacements are taken where the plan allows it, and
never sees another's package; ops within territories see their own; a diy filter is
shipped by ops and is on the shipping list until it is fitted."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from api import create_app
from db.database import Database
from service.lifecycle import Origin
from service.registry import ServiceRegistry, parse_doc
from tests.api.conftest import world_keys
from tests.api.test_attacks import api_context, bearer
from tests.provisioned import served
from tests.service.helpers import opened
from tests.world import WORLD

pytestmark = pytest.mark.postgres

PLAN = {
    "id": "p-2x", "name": "Two filters a year", "device_type": "purifier", "replacements": 2,
    "months": 12, "price_cents": 49900,
}  # fmt: skip


@pytest.fixture
def api(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Database]]:
    db = Database(postgres_url)
    db.upgrade()
    rows = {**WORLD, "package_plans": [*WORLD["package_plans"], PLAN]}
    ServiceRegistry(db).load(parse_doc(rows))  # type: ignore[arg-type]
    keys = world_keys(db)
    try:
        with served(create_app(api_context(db, tmp_path))) as url:
            yield url, keys, db
    finally:
        db.dispose()


def test_a_customer_buys_a_plan_for_their_device_once_however_often_they_send_it(
    api: tuple[str, dict[str, str], Database],
) -> None:
    url, keys, _ = api
    li = bearer(keys["li"])
    with httpx.Client(base_url=url, timeout=10) as http:
        offered = http.get("/api/v1/devices/ap-1/package-plans", headers=li).json()
        assert {p["id"] for p in offered} == {"p-2x", "care-purifier"}
        sale = {"plan_id": "p-2x", "sale_id": "app-li-1", "preferred": {"days": ["sat"]}}

        def buy(_: int) -> httpx.Response:
            return httpx.post(f"{url}/api/v1/devices/ap-1/packages", json=sale, headers=li)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(buy, range(6)))
        assert sorted(r.status_code for r in answers) == [200] * 5 + [201]
        assert len({r.json()["id"] for r in answers}) == 1
        package = answers[0].json()
        assert (package["status"], package["remaining"], package["channel"]) == (
            "active", 2, "app"
        )  # fmt: skip
        assert package["preferred"]["days"] == ["sat"]
        mine = http.get("/api/v1/devices/ap-1/packages", headers=li).json()
        assert [p["sale_id"] for p in mine] == ["app-li-1"]
        # the same sale id for something else is refused, and says why
        r = http.post(
            "/api/v1/devices/ac-1/packages", json={**sale, "plan_id": "care-purifier"}, headers=li
        )
        assert r.status_code == 409 and "app-li-1" in r.json()["detail"]
        # diy is the plan's to allow
        r = http.patch(f"/api/v1/packages/{package['id']}", json={"fulfilment": "diy"}, headers=li)
        assert r.status_code == 409 and "no diy option" in r.json()["detail"]
        r = http.post(
            "/api/v1/devices/ap-1/packages",
            json={**sale, "sale_id": "x", "preferred": {"days": ["funday"]}},
            headers=li,
        )
        assert r.status_code == 422 and "days" in r.text
        renewed = http.post(
            f"/api/v1/packages/{package['id']}/renewal", json={"sale_id": "app-li-2"}, headers=li
        )
        assert renewed.status_code == 201, renewed.text
        assert renewed.json()["starts_on"] == package["ends_on"]


def test_a_customer_never_reaches_anothers_device_or_package(
    api: tuple[str, dict[str, str], Database],
) -> None:
    url, keys, _ = api
    li, wang = bearer(keys["li"]), bearer(keys["wang"])
    with httpx.Client(base_url=url, timeout=10) as http:
        [theirs] = http.get("/api/v1/devices/ap-2/packages", headers=wang).json()
        pid = theirs["id"]
        sale = {"plan_id": "care-purifier", "sale_id": "steal-1"}
        assert http.get("/api/v1/devices/ap-2/packages", headers=li).status_code == 404
        assert http.get("/api/v1/devices/ap-2/package-plans", headers=li).status_code == 404
        assert http.post("/api/v1/devices/ap-2/packages", json=sale, headers=li).status_code == 404
        assert http.get(f"/api/v1/packages/{pid}", headers=li).status_code == 404
        changed = http.patch(f"/api/v1/packages/{pid}", json={"fulfilment": "diy"}, headers=li)
        assert changed.status_code == 404
        renewal = http.post(f"/api/v1/packages/{pid}/renewal", json={"sale_id": "s"}, headers=li)
        assert renewal.status_code == 404
        assert http.get(f"/api/v1/packages/{pid}", headers=wang).json()["fulfilment"] == "visit"
        # a technician sells nothing; a customer ships nothing and lists no one's packages
        tech = bearer(keys["zhang"])
        assert (
            http.post("/api/v1/devices/ap-1/packages", json=sale, headers=tech).status_code == 403
        )
        assert http.get("/api/v1/packages", headers=li).status_code == 403
        assert http.get("/api/v1/shipments", headers=li).status_code == 403


def test_ops_see_their_territories_packages_and_ship_diy_filters(
    api: tuple[str, dict[str, str], Database],
) -> None:
    url, keys, db = api
    ops, t2 = bearer(keys["ops"]), bearer(keys["ops-t2"])
    with httpx.Client(base_url=url, timeout=10) as http:
        every = {p["sale_id"] for p in http.get("/api/v1/packages", headers=ops).json()}
        assert every == {"s-ap-2", "s-wp-1"}
        # wp-1 is in t-2; ap-2 in t-1
        assert [p["sale_id"] for p in http.get("/api/v1/packages", headers=t2).json()] == ["s-wp-1"]
        [ap2] = http.get("/api/v1/devices/ap-2/packages", headers=ops).json()
        r = http.patch(f"/api/v1/packages/{ap2['id']}", json={"fulfilment": "diy"}, headers=ops)
        assert r.status_code == 200 and r.json()["fulfilment"] == "diy"
        order = opened(db, "ap-2", "filter_replacement", datetime.now(UTC), origin=Origin.AUTO)
        [due] = http.get("/api/v1/shipments", headers=ops).json()
        assert (due["order_id"], due["state"], due["carrier"]) == (order, "open", None)
        shipment = {"carrier": "SF Express", "tracking": "SF1234567890"}
        r = http.post(f"/api/v1/orders/{order}/shipment", json=shipment, headers=ops)
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["fulfilment"]) == ("in_progress", "diy")
        again = http.post(f"/api/v1/orders/{order}/shipment", json=shipment, headers=ops)
        assert again.status_code == 409 and "in_progress" in again.json()["detail"]
        [sent] = http.get("/api/v1/shipments", headers=ops).json()
        assert (sent["state"], sent["tracking"]) == ("in_progress", "SF1234567890")
        blank = http.post(
            f"/api/v1/orders/{order}/shipment", json={"carrier": " ", "tracking": "x"}, headers=ops
        )
        assert blank.status_code == 422
