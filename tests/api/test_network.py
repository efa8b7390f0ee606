"""The outlet network over HTTP, from outside: a real server on PostgreSQL. An outlet's
ops answer only their outlet's offers, see only their outlets (in the hierarchy, the
offers and the statements), and cannot move jobs between outlets; the region's ops can."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from api import create_app
from api.accounts import Accounts, Role
from db.database import Database
from service.registry import ServiceRegistry, parse_doc
from tests.api.test_attacks import api_context, bearer
from tests.provisioned import served
from tests.service.helpers import opened
from tests.service.test_network import network
from tests.world import WORLD

pytestmark = pytest.mark.postgres


@pytest.fixture
def api(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Database]]:
    db = Database(postgres_url)
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    network(db, o2_hours=3)
    accounts = Accounts(db)
    keys = {
        "east": accounts.create("east", name="East", role=Role.OPS).key,
        "o1": accounts.create("o1", name="O1", role=Role.OPS, territories_=["t-1", "t-2"]).key,
        "o2": accounts.create("o2", name="O2", role=Role.OPS, territories_=["t-3"]).key,
        "li": accounts.create("li", name="Li", role=Role.CUSTOMER, customer_id="c-app").key,
    }
    try:
        with served(create_app(api_context(db, tmp_path))) as url:
            yield url, keys, db
    finally:
        db.dispose()


def test_each_outlet_answers_its_own_offers_and_only_the_region_moves_jobs(
    api: tuple[str, dict[str, str], Database],
) -> None:
    url, keys, db = api
    east, o1, o2 = bearer(keys["east"]), bearer(keys["o1"]), bearer(keys["o2"])
    order = opened(db, "ap-1", "filter_replacement", datetime.now(UTC))
    with httpx.Client(base_url=url, timeout=10) as http:
        assert [o["order_id"] for o in http.get("/api/v1/outlet-offers", headers=o1).json()] == [
            order
        ]
        assert http.get("/api/v1/outlet-offers", headers=o2).json() == []
        tree = http.get("/api/v1/network", headers=o2).json()
        assert [o["id"] for r in tree for o in r["outlets"]] == ["o-2"]
        answer = f"/api/v1/orders/{order}/outlet-answer"
        r = http.post(answer, json={"accept": True}, headers=o2)
        assert r.status_code == 409 and "your outlet" in r.json()["detail"]
        r = http.post(answer, json={"accept": False}, headers=o1)
        assert r.status_code == 409 and "say why" in r.json()["detail"]
        r = http.post(answer, json={"accept": False, "reason": "van in repair"}, headers=o1)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "open"
        # now o-2's to answer; o-1 no longer can
        assert http.post(answer, json={"accept": True}, headers=o1).status_code == 409
        [offer] = http.get("/api/v1/outlet-offers", headers=o2).json()
        assert offer["outlet_id"] == "o-2"
        r = http.post(answer, json={"accept": True}, headers=o2)
        assert r.status_code == 200 and r.json()["technician_id"] == "tech-2"
        # moving jobs between outlets is the region's
        move = f"/api/v1/orders/{order}/outlet"
        assert http.post(move, json={"outlet_id": "o-1"}, headers=o1).status_code == 403
        r = http.post(move, json={"outlet_id": "o-1"}, headers=east)
        assert r.status_code == 409 and "only an open job" in r.json()["detail"]
        # a customer has no business here
        li = bearer(keys["li"])
        assert http.get("/api/v1/outlet-offers", headers=li).status_code == 403
        assert http.post(answer, json={"accept": True}, headers=li).status_code == 403


def test_statements_are_json_or_csv_and_each_outlet_sees_its_own(
    api: tuple[str, dict[str, str], Database],
) -> None:
    url, keys, db = api
    net_order = opened(db, "ap-1", "filter_replacement", datetime(2026, 11, 24, tzinfo=UTC))
    from service.network import Network

    Network(db).expire(now=datetime(2026, 11, 25, tzinfo=UTC))  # o-1 let it lapse
    Network(db).expire(now=datetime(2026, 11, 26, tzinfo=UTC))  # and so did o-2
    assert net_order
    period = {"start": "2026-11-01", "end": "2026-12-01"}
    with httpx.Client(base_url=url, timeout=10) as http:
        rows = http.get("/api/v1/outlet-statements", params=period, headers=bearer(keys["east"]))
        assert [(r["outlet_id"], r["late_answers"], r["net_cents"]) for r in rows.json()] == [
            ("o-1", 1, -2000), ("o-2", 1, -2000),
        ]  # fmt: skip
        mine = http.get(
            "/api/v1/outlet-statements", params={**period, "format": "csv", "items": "true"},
            headers=bearer(keys["o2"]),
        )  # fmt: skip
        assert mine.headers["content-type"].startswith("text/csv")
        lines = mine.text.strip().splitlines()
        assert lines[0].startswith("outlet_id,kind,order_id") and len(lines) == 2
        assert lines[1].startswith("o-2,deduction,")
