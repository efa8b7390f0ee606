"""The API's first routes: keys and roles (401 vs 403 vs 404), the caller's scope on
every device route, device health as the consumer app shows it, the rate limit, and the
operations endpoints. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.accounts import AccountError, Accounts, Role
from db.database import Database
from fleet.predictions import TYPICAL_USE, PredictedExhaustion, Predictions
from fleet.state import DeviceStateRepository, StateUpdate
from telemetry.records import Reading
from tests.api.conftest import client_for
from tests.service.helpers import opened

NOW = datetime.now(UTC)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_a_key_or_with_a_bad_one_the_answer_is_401_with_a_challenge(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    for headers in ({}, bearer("fc_nope"), bearer("not-even-ours")):
        r = client.get("/api/v1/devices", headers=headers)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert "key" in r.json()["detail"]
    assert client.get("/api/v1/devices", headers={"X-API-Key": keys["ops"]}).status_code == 200
    Accounts(world).revoke(keys["ops"][:9])
    assert client.get("/api/v1/devices", headers=bearer(keys["ops"])).status_code == 401


def test_each_role_lists_only_the_devices_in_its_scope(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    def ids(key: str) -> list[str]:
        r = client.get("/api/v1/devices", headers=bearer(key))
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()]

    everything = ids(keys["ops"])
    assert {"ap-1", "ap-2", "ap-3"} <= set(everything)
    assert ids(keys["li"]) == ["ac-1", "ap-1"]
    assert ids(keys["wang"]) == ["ap-2", "wp-1"]
    assert "ap-3" in ids(keys["ops-t2"]) and "ap-1" not in ids(keys["ops-t2"])
    assert ids(keys["zhang"]) == []  # no assignment yet
    opened(world, "ap-2", "filter_replacement", NOW)
    from service.dispatch import Dispatcher

    Dispatcher(world).run(None, now=NOW)
    assert ids(keys["zhang"]) == ["ap-2"]


def test_another_customers_device_does_not_exist_for_you(
    client: TestClient, keys: dict[str, str]
) -> None:
    mine = client.get("/api/v1/devices/ap-1/health", headers=bearer(keys["li"]))
    assert mine.status_code == 200
    theirs = client.get("/api/v1/devices/ap-2/health", headers=bearer(keys["li"]))
    missing = client.get("/api/v1/devices/ap-404/health", headers=bearer(keys["li"]))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == {"detail": "device 'ap-2' not found"}


def test_device_health_shows_readings_with_units_filters_problems_and_the_open_job(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    reading = Reading("purifier", "ap-1", 1, 7, int(NOW.timestamp() * 1000), {
        "pm25": 12.5, "filter_life_pct": 61.0, "motor_current_ma": 250.0,
    })  # fmt: skip
    DeviceStateRepository(world).apply([StateUpdate.of_reading(reading, NOW)])
    Predictions(world).record(
        [
            PredictedExhaustion(
                "ap-1",
                "main",
                NOW + timedelta(days=9),
                source="filter_life",
                low=NOW + timedelta(days=7),
                high=NOW + timedelta(days=12),
                consumed=0.85,
                rated_at=NOW + timedelta(days=40),
                model_version="v-1",
            )
        ],
        now=NOW,
    )
    order = opened(world, "ap-1", "filter_replacement", NOW)
    r = client.get("/api/v1/devices/ap-1/health", headers=bearer(keys["li"]))
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["online"] is True and h["last_seen"] is not None
    assert {"name": "pm25", "value": 12.5, "unit": "µg/m³"} in h["readings"]
    (f,) = h["filters"]
    assert f["stage"] == "main" and f["condition_pct"] == 15.0
    assert f["status"] == "warning"  # 15 % left, spent in 9 days
    assert f["low"] < f["predicted_exhaustion"] < f["high"] < f["rated_exhaustion"]
    assert f["basis"] == "measured"  # from the unit's own data
    assert h["open_job"]["id"] == order and h["open_job"]["problem"] == "filter_replacement"

    # a unit that never reported its usage: the date is a reminder, and says so
    Predictions(world).record(
        [PredictedExhaustion("ap-1", "main", NOW + timedelta(days=30), source=TYPICAL_USE)],
        now=NOW,
    )
    h = client.get("/api/v1/devices/ap-1/health", headers=bearer(keys["li"])).json()
    assert [f["basis"] for f in h["filters"]] == ["typical_use"]
    assert [c["basis"] for c in h["card"] if c.get("consumable")] == ["typical_use"]


def test_over_the_rate_the_key_waits_with_retry_after(
    world: Database, keys: dict[str, str], tmp_path: Path
) -> None:
    with client_for(world, tmp_path, rate=2) as c:
        codes = [c.get("/api/v1/devices", headers=bearer(keys["li"])).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/api/v1/devices", headers=bearer(keys["li"]))
        assert int(r.headers["Retry-After"]) >= 1
        assert c.get("/api/v1/devices", headers=bearer(keys["wang"])).status_code == 200


def test_bad_input_is_422_with_the_field_path(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/api/v1/devices?limit=0", headers=bearer(keys["ops"]))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "limit"]


def test_liveness_readiness_metrics_and_the_openapi_page(
    client: TestClient, keys: dict[str, str]
) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "telemetry_store": "ok"}
    assert client.get("/metrics").status_code == 401  # the fleet's figures need a key
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {keys['ops']}"})
    assert "python_info" in metrics.text
    spec = client.get("/openapi.json").json()
    assert "/api/v1/devices/{device_id}/health" in spec["paths"]


def test_accounts_refuse_what_cannot_be_scoped(world: Database) -> None:
    accounts = Accounts(world)
    with pytest.raises(AccountError, match="--customer"):
        accounts.create("x", name="x", role=Role.CUSTOMER)
    with pytest.raises(AccountError, match="no customer 'c-nope'"):
        accounts.create("x", name="x", role=Role.CUSTOMER, customer_id="c-nope")
    with pytest.raises(AccountError, match="only an ops account"):
        accounts.create("x", name="x", role=Role.ADMIN, territories_=["t-1"])
    issued = accounts.create("x", name="x", role=Role.ADMIN)
    assert issued.key.startswith("fc_") and len(issued.key) > 40
    with pytest.raises(AccountError, match="exists already"):
        accounts.create("x", name="x", role=Role.ADMIN)
    from sqlalchemy import select

    from db.tables import api_keys

    with world.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.sha256, api_keys.c.prefix)).all()
    assert all(issued.key not in (h, p) for h, p in stored)  # only a hash at rest


@pytest.fixture
def hot_path_taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The devices `api.hotpath` answered for, in order (it calls its handler as usual)."""
    import api.hotpath

    taken: list[str] = []
    health_response = api.hotpath.health_response

    async def counted(request: object, device_id: str) -> object:
        taken.append(device_id)
        return await health_response(request, device_id)  # type: ignore[arg-type]

    monkeypatch.setattr(api.hotpath, "health_response", counted)
    return taken


def test_device_health_answers_the_same_before_the_router_as_through_it(
    world: Database, keys: dict[str, str], tmp_path: Path, hot_path_taken: list[str]
) -> None:
    """`api.hotpath` answers device health before FastAPI's router, for speed: every
    answer (yours, another's, none, unknown key, no key, over the rate) is the same as the
    declared route's, and the hot path is the one taken."""
    from api.hotpath import HotPaths

    taken = hot_path_taken
    asks = [
        ("ap-1", bearer(keys["li"])),
        ("ap-2", bearer(keys["li"])),
        ("ap-404", bearer(keys["li"])),
        ("ap-1", bearer("fc_unknown")),
        ("ap-1", {}),
        *[("ap-1", bearer(keys["ops"]))] * 4,  # 3 a minute per key: the fourth is 429
    ]

    def answers(client: TestClient) -> list[tuple[int, object, str | None, str | None]]:
        out = []
        for device, headers in asks:
            r = client.get(f"/api/v1/devices/{device}/health", headers=headers)
            out.append(
                (
                    r.status_code,
                    r.json(),
                    r.headers.get("content-type"),
                    r.headers.get("retry-after"),
                )
            )
        return out

    with client_for(world, tmp_path / "hot", rate=3) as hot:
        fast = answers(hot)
    assert len(taken) == len(asks)
    with client_for(world, tmp_path / "routed", rate=3) as routed:
        app = routed.app
        app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPaths]  # type: ignore[attr-defined]
        app.middleware_stack = None  # type: ignore[attr-defined]  # rebuilt without it
        slow = answers(routed)
    assert len(taken) == len(asks)  # the second app took the route
    assert [a[0] for a in fast] == [200, 404, 404, 401, 401, 200, 200, 200, 429]
    assert fast == slow


def test_behind_a_proxy_prefix_device_health_still_skips_the_router(
    world: Database, keys: dict[str, str], tmp_path: Path, hot_path_taken: list[str]
) -> None:
    """Served under a root path (a proxy's prefix), the hot path matches what the router
    would: the path without the prefix."""
    taken = hot_path_taken
    with client_for(world, tmp_path, root_path="/fleet") as c:  # uvicorn --root-path /fleet
        r = c.get("/fleet/api/v1/devices/ap-1/health", headers=bearer(keys["li"]))
    assert r.status_code == 200, r.text
    assert r.json()["device_id"] == "ap-1" and taken == ["ap-1"]
