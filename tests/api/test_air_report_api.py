"""The monthly air report as the app reads it over HTTP (JSON), and as the household opens
it from the message's link (a page behind their own sign-in): each only for who may see
the device; a bad month says what to fix; the preference turns the message off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.accounts import Accounts
from db.database import Database
from service.air_report import AirReports
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store
from tests.api.conftest import client_for
from tests.api.test_devices import bearer
from tests.service.test_air_report import home_value, neighbour_value, neighbours, readings

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "li's password 1"


@pytest.fixture
def street(world: Database, tmp_path: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    """Li's purifier ap-1 and eleven neighbours' reported all November 2026."""
    ServiceRegistry(world).load(parse_doc(neighbours(11)))  # type: ignore[arg-type]

    async def seed() -> None:
        async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as s:
            await s.write(readings("ap-1", home_value, SHANGHAI))
            for i in range(11):
                await s.write(readings(f"n{i}-0", neighbour_value(i), SHANGHAI))

    asyncio.run(seed())
    Accounts(world).set_password("li", PASSWORD)
    with client_for(world, tmp_path) as c:
        yield c


def test_the_customer_reads_their_homes_report_in_their_language(
    street: TestClient, keys: dict[str, str]
) -> None:
    r = street.get("/api/v1/devices/ap-1/air-report?month=2026-11", headers=bearer(keys["li"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["month"], body["timezone"]) == ("2026-11", "Asia/Shanghai")
    (pm,) = body["metrics"]
    assert (pm["metric"], pm["unit"], pm["above"]) == ("pm25", "µg/m³", 15.0)
    assert (pm["hours"], pm["hours_out"], pm["days_out"]) == (720, 29 * 4 + 24, 1)
    assert len(pm["by_hour"]) == 24 and len(pm["days"]) == 30
    assert pm["neighbourhood"]["homes"] == 12
    assert pm["label"] == "室内PM2.5"  # Li reads Chinese
    codes = [a["code"] for a in body["advice"]]
    assert "out_of_bounds" in codes and "ventilate" in codes
    en = street.get(
        "/api/v1/devices/ap-1/air-report?month=2026-11",
        headers={**bearer(keys["li"]), "Accept-Language": "en-GB,en;q=0.8"},
    ).json()
    assert en["metrics"][0]["label"] == "Indoor PM2.5"


def test_no_one_reads_a_report_outside_their_scope(
    street: TestClient, keys: dict[str, str]
) -> None:
    q = "/air-report?month=2026-11"
    assert street.get(f"/api/v1/devices/ap-3{q}", headers=bearer(keys["li"])).status_code == 404
    assert street.get(f"/api/v1/devices/ap-1{q}", headers=bearer(keys["wang"])).status_code == 404
    assert street.get(f"/api/v1/devices/ap-1{q}", headers=bearer(keys["ops-t2"])).status_code == 404
    assert street.get(f"/api/v1/devices/ap-1{q}", headers=bearer(keys["ops"])).status_code == 200
    assert street.get(f"/api/v1/devices/ap-1{q}").status_code == 401


def test_a_bad_month_says_what_to_fix(street: TestClient, keys: dict[str, str]) -> None:
    li = bearer(keys["li"])
    r = street.get("/api/v1/devices/ap-1/air-report?month=2026-13", headers=li)
    assert r.status_code == 422 and "YYYY-MM" in r.json()["detail"]
    r = street.get("/api/v1/devices/ap-1/air-report?month=November", headers=li)
    assert r.status_code == 422
    r = street.get("/api/v1/devices/ap-1/air-report?month=2999-01", headers=li)
    assert r.status_code == 422 and "once the month is over" in r.json()["detail"]
    r = street.get("/api/v1/devices/wp-1/air-report", headers=bearer(keys["wang"]))
    assert r.status_code == 422 and "air_quality" in r.json()["detail"]


def test_without_a_month_it_is_the_last_one_over_in_the_customers_time_zone(
    street: TestClient, keys: dict[str, str]
) -> None:
    body = street.get("/api/v1/devices/ap-1/air-report", headers=bearer(keys["li"])).json()
    assert body["month"] == f"{AirReports.last_month(datetime.now(UTC), 'Asia/Shanghai'):%Y-%m}"


def test_the_customer_turns_the_monthly_message_off_and_on(
    street: TestClient, keys: dict[str, str]
) -> None:
    li = bearer(keys["li"])
    assert street.get("/api/v1/me/preferences", headers=li).json()["air_reports"] is True
    r = street.patch("/api/v1/me/preferences", json={"air_reports": False}, headers=li)
    assert r.status_code == 200 and r.json()["air_reports"] is False
    assert r.json()["channel"] == "app"  # what was not given stays
    r = street.patch("/api/v1/me/preferences", json={"air_reports": "sometimes"}, headers=li)
    assert r.status_code == 422


def test_the_messages_link_leads_through_the_sign_in_to_the_report_page(
    street: TestClient,
) -> None:
    link = "/my/air/ap-1?month=2026-11"
    r = street.get(link, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/my/login?next=")
    r = street.post(
        "/my/login",
        data={"username": "li", "password": PASSWORD, "next": link},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == link
    page = street.get(link)
    assert page.status_code == 200
    assert "Your home's air in 2026-11" in page.text and "data-neighbourhood" in page.text
    assert street.get("/my/air/ap-3?month=2026-11").status_code == 404  # Berg's
    assert street.get("/my").status_code == 200


def test_the_sign_in_never_sends_anyone_to_another_site(street: TestClient) -> None:
    for evil in ("https://evil.example/", "//evil.example/my/", "/my//evil.example"):
        r = street.post(
            "/my/login",
            data={"username": "li", "password": PASSWORD, "next": evil},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/my", evil
    r = street.post(
        "/my/login", data={"username": "li", "password": "wrong one!"}, follow_redirects=False
    )
    assert r.status_code == 200 and "wrong account or password" in r.text


def test_ops_cannot_sign_in_to_the_customers_pages(street: TestClient, world: Database) -> None:
    Accounts(world).set_password("ops", "ops password 1")
    r = street.post(
        "/my/login", data={"username": "ops", "password": "ops password 1"}, follow_redirects=False
    )
    assert r.status_code == 200 and "for customer accounts" in r.text
