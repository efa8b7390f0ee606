"""The API's hot reads: a credential's account remembered for `auth_cache_s` (and no
longer), and a database restart costing no request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api import ApiContext, create_app
from api.accounts import Accounts, Principal, Role
from api.authcache import CredentialCache
from api.schemas import DeviceHealth
from db.database import Database
from telemetry.backends import StoreSettings, create_store
from tests.api.test_devices import bearer


def test_the_cache_remembers_an_account_for_its_ttl_and_never_an_unknown_key() -> None:
    now = [100.0]
    cache = CredentialCache(ttl_s=5.0, clock=lambda: now[0])
    who = Principal(user_id="li", name="Li", role=Role.CUSTOMER, customer_id="c-app")
    assert cache.get("fc_key") is None
    cache.put("fc_key", who)
    now[0] += 4.9
    assert cache.get("fc_key") == who
    now[0] += 0.2
    assert cache.get("fc_key") is None  # past its ttl: read again
    off = CredentialCache(ttl_s=0)
    off.put("fc_key", who)
    assert off.get("fc_key") is None


def test_with_a_cache_a_revoked_key_stops_within_the_ttl(
    world: Database, keys: dict[str, str], tmp_path: Path
) -> None:
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    ctx = ApiContext(db=world, store=store, photo_dir=tmp_path / "photos", auth_cache_s=0.5)
    with TestClient(create_app(ctx)) as client:

        def status() -> int:
            return client.get("/api/v1/devices", headers=bearer(keys["ops"])).status_code

        assert status() == 200
        Accounts(world).revoke(keys["ops"][:9])
        revoked = time.monotonic()
        assert status() == 200  # remembered: still served, for at most auth_cache_s
        # used without pause, it is not remembered any longer for that: a hit never
        # extends the time
        while status() == 200:
            assert time.monotonic() - revoked < 0.5 + 0.5, "served long after the ttl"
            time.sleep(0.05)
        assert time.monotonic() - revoked >= 0.4  # and not before its time was up
        # an unknown key is never remembered: a new one works at once
        fresh = Accounts(world).issue("ops").key
        assert client.get("/api/v1/devices", headers=bearer(fresh)).status_code == 200


@pytest.mark.postgres
def test_a_database_restart_costs_no_request(
    postgres_url: str, li_on_postgres: tuple[Database, str], tmp_path: Path
) -> None:
    """Pooled connections die with the server's backends; the next read retries once on a
    fresh connection instead of failing the request."""
    db, key = li_on_postgres
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    ctx = ApiContext(db=db, store=store, photo_dir=tmp_path / "photos")
    admin = sa.create_engine(
        sa.engine.make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with TestClient(create_app(ctx)) as client:
        for _ in range(3):
            assert client.get("/api/v1/devices/ap-1/health", headers=bearer(key)).status_code == 200
            with admin.connect() as conn:  # what a restart does to every open connection
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": sa.engine.make_url(postgres_url).database},
                ).scalar_one()
            assert killed >= 1
            r = client.get("/api/v1/devices/ap-1/health", headers=bearer(key))
            assert r.status_code == 200, r.text
    admin.dispose()


@pytest.mark.postgres
def test_device_health_on_postgres_is_the_same_read_and_the_same_scope(
    li_on_postgres: tuple[Database, str], tmp_path: Path
) -> None:
    """On PostgreSQL the route reads on psycopg directly (a prepared statement): the body
    is the one the SQLAlchemy read gives, and each caller still sees only their scope."""
    from datetime import UTC, datetime

    from api import views

    db, li = li_on_postgres
    accounts = Accounts(db)
    ops_t2 = accounts.create("ops-t2", name="T2", role=Role.OPS, territories_=["t-2"]).key
    admin = accounts.create("root", name="Root", role=Role.ADMIN).key
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    ctx = ApiContext(db=db, store=store, photo_dir=tmp_path / "photos")
    with TestClient(create_app(ctx)) as client:

        def health(key: str, device: str) -> tuple[int, dict[str, object]]:
            r = client.get(f"/api/v1/devices/{device}/health", headers=bearer(key))
            return r.status_code, r.json()

        for key, device, expected in [
            (li, "ap-1", 200),
            (li, "ac-1", 200),
            (li, "ap-2", 404),  # another customer's
            (ops_t2, "ap-3", 200),  # in t-2 (a territories scope: the SQLAlchemy path)
            (ops_t2, "ap-1", 404),  # in t-1
            (admin, "wp-1", 200),
            (admin, "nope", 404),
        ]:
            status, body = health(key, device)
            assert status == expected, (key, device, body)
            if status == 200:
                assert body["device_id"] == device
        status, body = health(li, "ap-1")
        who = Principal(user_id="li", name="Li", role=Role.CUSTOMER, customer_id="c-app")
        same = db.read(lambda conn: views.health(conn, who, "ap-1", datetime.now(UTC)))
        assert body == DeviceHealth.model_validate(same).model_dump(mode="json")
        r = client.get("/api/v1/devices/ap-1/health", headers=bearer("fc_unknown"))
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def li_on_postgres(postgres_url: str) -> Iterator[tuple[Database, str]]:
    """The test world on PostgreSQL, with customer Li's key."""
    from service.registry import ServiceRegistry, parse_doc
    from tests.world import WORLD

    db = Database(postgres_url)
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    key = Accounts(db).create("li", name="Li", role=Role.CUSTOMER, customer_id="c-app").key
    yield db, key
    db.dispose()
