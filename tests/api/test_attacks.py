"""The API probed from outside as an attacker would: a real server (uvicorn on a
loopback port) on PostgreSQL, plain HTTP, with no key or with one. Bad input is a 4xx that
says what to fix, never a 500, and an unauthenticated client cannot make the server read
a large body."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import ApiContext, create_app
from api.accounts import Accounts, Role
from api.guard import MAX_BODY
from db.database import Database
from service.lifecycle import Origin
from telemetry.backends import StoreSettings, create_store
from tests.provisioned import served
from tests.service.helpers import accepted, opened

pytestmark = pytest.mark.postgres


@pytest.fixture
def api(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    """The served app's URL, keys by role, and an auto-opened order's id."""
    from datetime import UTC, datetime

    from service.registry import ServiceRegistry, parse_doc
    from tests.world import WORLD

    db = Database(postgres_url)
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    order = opened(db, "ap-1", "filter_replacement", datetime.now(UTC), origin=Origin.AUTO)
    accounts = Accounts(db)
    keys = {
        "ops": accounts.create("ops", name="Ops", role=Role.OPS).key,
        "li": accounts.create("li", name="Li", role=Role.CUSTOMER, customer_id="c-app").key,
        "zhang": accounts.create(
            "zhang", name="Zhang", role=Role.TECHNICIAN, technician_id="tech-1"
        ).key,
    }
    try:
        with served(create_app(api_context(db, tmp_path))) as url:
            yield url, keys, order
    finally:
        db.dispose()


def api_context(db: Database, tmp_path: Path) -> ApiContext:
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    return ApiContext(db=db, store=store, photo_dir=tmp_path / "photos")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_nul_character_anywhere_is_a_422_that_says_so_not_a_500(
    api: tuple[str, dict[str, str], int],
) -> None:
    url, keys, order_id = api
    ops = bearer(keys["ops"])
    probes: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "/api/v1/devices?q=%00", {}),
        ("GET", "/api/v1/devices?q=%00", {"headers": ops}),
        ("GET", "/api/v1/devices/%00/health", {}),
        ("GET", "/api/v1/devices/%00/health", {"headers": ops}),
        ("POST", "/api/v1/auth/token", {"data": {"username": "\x00", "password": "x"}}),
        ("GET", "/api/v1/alerts?state=%00", {"headers": ops}),
        ("GET", "/api/v1/orders?device_id=a%00b", {"headers": ops}),
        ("GET", "/api/v1/dead-letters?reason=%00", {"headers": ops}),
        (
            "POST",
            "/api/v1/silences",
            {
                "headers": ops,
                "json": {"ends_at": "2999-01-01T00:00:00Z", "comment": "hush\x00"},
            },
        ),
        (
            "POST",
            f"/api/v1/orders/{order_id}/assign",
            {"headers": ops, "json": {"technician_id": "tech-1\x00"}},
        ),
    ]
    with httpx.Client(base_url=url, timeout=10) as http:
        for method, path, kw in probes:
            r = http.request(method, path, **kw)  # type: ignore[arg-type]
            assert r.status_code == 422, (method, path, r.status_code, r.text)
            assert "NUL" in r.json()["detail"], (path, r.text)
        # the connection and the server are fine afterwards
        assert http.get("/api/v1/devices?q=ap", headers=ops).status_code == 200


def test_out_of_range_dates_and_ids_are_4xx(api: tuple[str, dict[str, str], int]) -> None:
    url, keys, _ = api
    with httpx.Client(base_url=url, timeout=10) as http:
        r = http.get(
            "/api/v1/kpis",
            params={"start": "0001-01-01", "end": "9999-12-31"},
            headers=bearer(keys["ops"]),
        )
        assert r.status_code == 200, r.text  # the range is cut to 1970-2200
        r = http.get("/api/v1/kpis", params={"start": "0"}, headers=bearer(keys["ops"]))
        assert r.status_code == 422 and "ISO 8601" in r.text  # not seconds since 1970
        http.cookies.set("fc_session", keys["ops"])
        r = http.post("/console/orders/99999999999/approve")
        assert r.status_code == 422, r.text


def test_a_query_parameter_taken_once_and_given_twice_is_refused_by_name(
    api: tuple[str, dict[str, str], int],
) -> None:
    url, keys, _ = api
    ops = bearer(keys["ops"])
    with httpx.Client(base_url=url, timeout=10) as http:
        # the last value would win: a typo after a good value would pass unseen
        r = http.get("/api/v1/alerts?state=firing&state=bogus", headers=ops)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "query parameter 'state' is given 2 times: give it once"
        r = http.get("/api/v1/orders?limit=5&limit=6", headers=ops)
        assert r.status_code == 422 and "'limit'" in r.text
        # a parameter declared as a list repeats
        r = http.get("/api/v1/orders?state=open&state=assigned", headers=ops)
        assert r.status_code == 200, r.text


def _raw_post(url: str, path: str, headers: dict[str, str], declared: int, sent: int) -> str:
    """POST declaring `declared` bytes of JSON but sending only `sent` of them: the
    answer can only come before the body was read."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {declared}")
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"[" + b"1," * (sent // 2))
        return s.recv(65536).decode(errors="replace")


def test_a_large_body_is_refused_before_it_is_read(api: tuple[str, dict[str, str], int]) -> None:
    url, keys, _ = api
    ten_mb = 10 << 20
    path = "/api/v1/orders/bulk/cancel"
    # over the limit, with no key: refused from its declared size, never read
    answer = _raw_post(url, path, {}, ten_mb, 4096)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    # under the limit, with no key or a wrong one: 401 before the body is read
    for headers in ({}, bearer("fc_not-a-key")):
        answer = _raw_post(url, path, headers, MAX_BODY - 1, 4096)
        assert answer.startswith("HTTP/1.1 401"), answer[:200]
    # a valid key: over the limit is 413 with what to do
    answer = _raw_post(url, path, bearer(keys["ops"]), ten_mb, 4096)
    assert answer.startswith("HTTP/1.1 413") and "send less at once" in answer, answer[:300]

    # a streamed (chunked) body is cut off as soon as it passes the limit
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * (MAX_BODY // 8)

    with httpx.Client(base_url=url, timeout=10) as http:
        r = http.post(
            path,
            content=chunks(),
            headers={**bearer(keys["ops"]), "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        # under the limit, an authenticated body is served as before
        r = http.post(path, json={"ids": [1], "reason": "test"}, headers=bearer(keys["ops"]))
        assert r.status_code == 200, r.text


def test_a_customer_sees_a_proactive_job_only_once_ops_approved_it(
    api: tuple[str, dict[str, str], int],
) -> None:
    """ap-1 (Li's) has a job the engine proposed: until ops approve it, Li's app shows no
    job at all; afterwards it shows the job without ops' moves or SLA labels."""
    url, keys, order_id = api
    li, ops = bearer(keys["li"]), bearer(keys["ops"])
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get(f"/api/v1/orders/{order_id}", headers=ops).json()["state"] == "proposed"
        assert http.get("/api/v1/orders/mine", headers=li).json() == []
        assert http.get(f"/api/v1/orders/{order_id}", headers=li).status_code == 404
        assert http.get("/api/v1/devices/ap-1/health", headers=li).json()["open_job"] is None
        assert http.post(f"/api/v1/orders/{order_id}/approve", headers=ops).status_code == 200
        assert [o["id"] for o in http.get("/api/v1/orders/mine", headers=li).json()] == [order_id]
        mine = http.get(f"/api/v1/orders/{order_id}", headers=li).json()
        assert mine["allowed"] == [] and mine["sla"] is None and mine["evidence"] == []
        staff = http.get(f"/api/v1/orders/{order_id}", headers=ops).json()
        assert staff["allowed"] and staff["sla"] is not None
        health = http.get("/api/v1/devices/ap-1/health", headers=li).json()
        assert health["open_job"]["id"] == order_id


def test_a_technician_loses_sight_of_a_customer_once_the_job_is_over(
    postgres_url: str, api: tuple[str, dict[str, str], int]
) -> None:
    from datetime import UTC, datetime

    url, keys, _ = api
    db = Database(postgres_url)
    try:
        job = accepted(db, "ap-2", "filter_replacement", datetime.now(UTC))
    finally:
        db.dispose()
    tech, ops = bearer(keys["zhang"]), bearer(keys["ops"])
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/api/v1/devices/ap-2/health", headers=tech).status_code == 200
        assert [d["id"] for d in http.get("/api/v1/devices", headers=tech).json()] == ["ap-2"]
        r = http.post(f"/api/v1/orders/{job}/cancel", json={"reason": "fixed"}, headers=ops)
        assert r.status_code == 200, r.text
        assert http.get("/api/v1/devices/ap-2/health", headers=tech).status_code == 404
        assert http.get("/api/v1/devices", headers=tech).json() == []


def two_outlets() -> dict[str, object]:
    """The test world plus a south outlet (o-s) with its territory (t-s), technician
    (tech-s) and one customer's purifier there."""
    import copy

    from tests.world import WORLD

    world: dict[str, Any] = copy.deepcopy(WORLD)  # type: ignore[arg-type]
    world["outlets"].append({"id": "o-s", "name": "South", "timezone": "Asia/Shanghai"})
    world["territories"].append({"id": "t-s", "name": "South", "outlet_id": "o-s"})
    tech = copy.deepcopy(world["technicians"][0])
    tech.update(id="tech-s", name="Wu", outlet_id="o-s", territories=["t-s"])
    world["technicians"].append(tech)
    world["devices"].append(
        {
            "id": "ap-s",
            "device_type": "purifier",
            "serial": "SN-AP-S",
            "customer_id": "c-phone",
            "territory_id": "t-s",
            "address": "9 South Rd",
        }
    )
    return world


def test_ops_limited_to_territories_see_and_steer_only_their_own(
    postgres_url: str, tmp_path: Path
) -> None:
    """North ops (t-1, t-2; outlet o-1) against the south's silences, parts, KPIs, dead
    letters and technician, through the API and the console."""
    from datetime import UTC, datetime, timedelta

    from rules.alerts import AlertStore
    from service.registry import ServiceRegistry, parse_doc

    db = Database(postgres_url)
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(two_outlets()))  # type: ignore[arg-type]
    now = datetime.now(UTC)
    AlertStore(db).add_silence(
        ends_at=now + timedelta(days=1),
        created_by="ops",
        comment="south customer on holiday",
        device_id="ap-s",
    )
    north_job = opened(db, "ap-1", "filter_replacement", now)
    opened(db, "ap-s", "filter_replacement", now)  # the south has demand and KPIs too
    accounts = Accounts(db)
    north = accounts.create("north", name="N", role=Role.OPS, territories_=["t-1", "t-2"]).key
    everyone = accounts.create("all", name="A", role=Role.OPS).key
    try:
        with (
            served(create_app(api_context(db, tmp_path))) as url,
            httpx.Client(base_url=url, timeout=10) as http,
        ):
            # what there is to hide: ops without limits see the south
            rows = http.get("/api/v1/parts-forecast", headers=bearer(everyone)).json()
            assert "o-s" in {r["outlet_id"] for r in rows}
            assert len(http.get("/api/v1/silences", headers=bearer(everyone)).json()) == 1
            http.cookies.set("fc_session", everyone)
            assert "o-s" in http.get("/console/kpis").text
            assert "o-s" in http.get("/console/parts").text
            assert "tech-s" in http.get("/console?show=all").text
            h = bearer(north)
            assert http.get("/api/v1/silences", headers=h).status_code == 403
            rows = http.get("/api/v1/parts-forecast?by_territory=true", headers=h).json()
            assert {r["territory_id"] for r in rows} <= {"t-1", "t-2"}
            rows = http.get("/api/v1/parts-forecast", headers=h).json()
            assert {r["outlet_id"] for r in rows} <= {"o-1"}
            r = http.post(
                f"/api/v1/orders/{north_job}/assign",
                json={"technician_id": "tech-s"},
                headers=h,
            )
            assert r.status_code == 404 and "tech-s" in r.text, r.text
            http.cookies.set("fc_session", north)
            assert http.get("/console/dead-letters").status_code == 403
            kpi_page = http.get("/console/kpis").text
            assert "o-s" not in kpi_page and "t-s" not in kpi_page
            assert "o-s" not in http.get("/console/parts").text
            queue = http.get("/console?show=all").text
            assert "tech-1" in queue and "tech-s" not in queue
            r = http.post(f"/console/orders/{north_job}/assign", data={"technician_id": "tech-s"})
            assert "tech-s" not in http.get(f"/api/v1/orders/{north_job}", headers=h).text
    finally:
        db.dispose()


def test_sign_ins_end_at_sign_out_a_new_password_and_disabling(
    postgres_url: str, api: tuple[str, dict[str, str], int]
) -> None:
    from typer.testing import CliRunner

    from fleetcare.cli import app as cli

    url, keys, _ = api
    db = Database(postgres_url)
    accounts = Accounts(db)
    accounts.set_password("ops", "first-password-1")
    with httpx.Client(base_url=url, timeout=10) as http:

        def sign_in(password: str) -> str:
            r = http.post("/api/v1/auth/token", data={"username": "ops", "password": password})
            assert r.status_code == 200, r.text
            return str(r.json()["access_token"])

        def works(token: str) -> bool:
            r = httpx.get(f"{url}/api/v1/orders", headers=bearer(token), timeout=10)
            return r.status_code == 200

        # the console: signing out ends the cookie, and a copy of it
        r = http.post("/console/login", data={"username": "ops", "password": "first-password-1"})
        cookie = http.cookies["fc_session"]
        assert works(cookie)
        http.post("/console/logout")
        assert not works(cookie)
        # a new password ends the tokens signed with the old one
        token = sign_in("first-password-1")
        assert works(token)
        accounts.set_password("ops", "second-password-2")
        assert not works(token)
        # disabling from the command line ends keys and tokens at once
        token = sign_in("second-password-2")
        assert works(token) and works(keys["ops"])
        env = {"FLEETCARE_DB__URL": postgres_url, "FLEETCARE_API__AUTH_CACHE_S": "0"}
        out = CliRunner().invoke(cli, ["users", "disable", "ops"], env=env)
        assert out.exit_code == 0, out.output
        assert not works(token) and not works(keys["ops"])
        r = http.post(
            "/api/v1/auth/token", data={"username": "ops", "password": "second-password-2"}
        )
        assert r.status_code == 401
        out = CliRunner().invoke(cli, ["users", "enable", "ops"], env=env)
        assert out.exit_code == 0 and works(keys["ops"]) and not works(token)
        missing = CliRunner().invoke(cli, ["users", "disable", "nobody"], env=env)
        assert missing.exit_code == 1 and "no account 'nobody'" in missing.output
    db.dispose()


def test_sign_in_time_does_not_tell_which_accounts_have_a_password(
    postgres_url: str, api: tuple[str, dict[str, str], int]
) -> None:
    url, _, _ = api
    db = Database(postgres_url)
    Accounts(db).set_password("ops", "a-real-password-1")
    db.dispose()

    def median_ms(user: str) -> float:
        times = []
        with httpx.Client(base_url=url, timeout=10) as http:
            for _ in range(5):
                t = time.perf_counter()
                r = http.post("/api/v1/auth/token", data={"username": user, "password": "wrong"})
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 401
        return sorted(times)[2]

    with_password = median_ms("ops")
    # a password check (scrypt) costs tens of ms; a bare lookup a few: a factor of ten
    for other in ("li", "no-such-account"):
        assert median_ms(other) > 0.4 * with_password, other


def test_the_api_metrics_need_the_metrics_token_or_ops(
    postgres_url: str, tmp_path: Path, api: tuple[str, dict[str, str], int]
) -> None:
    """The figures describe the whole fleet and its service: Prometheus reads them with
    its own token, ops and admin with their keys; nobody else."""
    import dataclasses

    url, keys, _ = api
    db = Database(postgres_url)
    ctx = dataclasses.replace(api_context(db, tmp_path), metrics_token="prometheus-token-1")
    try:
        with served(create_app(ctx)) as with_token:
            for base in (url, with_token):
                assert httpx.get(f"{base}/metrics").status_code == 401
                assert httpx.get(f"{base}/metrics", headers=bearer(keys["li"])).status_code == 403
                assert httpx.get(f"{base}/metrics", headers=bearer(keys["ops"])).status_code == 200
            token = bearer("prometheus-token-1")
            assert httpx.get(f"{with_token}/metrics", headers=token).status_code == 200
            assert httpx.get(f"{url}/metrics", headers=token).status_code == 401  # no token set
            wrong = bearer("prometheus-token-2")
            assert httpx.get(f"{with_token}/metrics", headers=wrong).status_code == 401
    finally:
        db.dispose()


def test_ops_limited_to_territories_see_and_resolve_only_their_outlets_complaints(
    postgres_url: str, tmp_path: Path
) -> None:
    from service.complaints import Complaints, Source
    from service.registry import ServiceRegistry, parse_doc

    db = Database(postgres_url)
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(two_outlets()))  # type: ignore[arg-type]
    cases = Complaints(db)
    north = cases.open(source=Source.CALL, description="n", actor="a", device_id="ap-1")
    south = cases.open(source=Source.CALL, description="s", actor="a", device_id="ap-s")
    key = Accounts(db).create("north-2", name="N", role=Role.OPS, territories_=["t-1"]).key
    try:
        with (
            served(create_app(api_context(db, tmp_path))) as url,
            httpx.Client(base_url=url, timeout=10) as http,
        ):
            h = bearer(key)
            seen = [c["id"] for c in http.get("/api/v1/complaints", headers=h).json()]
            assert seen == [north.id]
            assert http.get(f"/api/v1/complaints/{south.id}", headers=h).status_code == 404
            r = http.post(
                f"/api/v1/complaints/{south.id}/resolution",
                json={"resolution": "x", "upheld": False},
                headers=h,
            )
            assert r.status_code == 404
            assert cases.get(south.id).state == "open"
    finally:
        db.dispose()
