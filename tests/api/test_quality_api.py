"""The quality analytics as R&D reads them over HTTP: fleet-wide, so only ops without
territory limits (or admin); rates as JSON or CSV; a bad range says what to fix."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from db.database import Database
from db.tables import device_sites, devices
from tests.api.test_devices import bearer
from tests.service.helpers import repaired


def seed(world: Database) -> None:
    """ap-1 (batch L1, in service since January 2027) failed in February; ap-2 (batch
    L2, since January too) has not."""
    at = datetime(2027, 2, 10, tzinfo=UTC)
    with world.engine.begin() as conn:
        for device, batch in (("ap-1", "L1"), ("ap-2", "L2")):
            conn.execute(devices.update().where(devices.c.id == device).values(batch=batch))
            conn.execute(
                device_sites.update()
                .where(device_sites.c.device_id == device)
                .values(installed_on=datetime(2027, 1, 1).date())
            )
    repaired(world, "ap-1", at)


def test_rates_by_batch_as_json_and_csv(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    seed(world)
    ops = bearer(keys["ops"])
    q = "by=batch&start=2027-01-01&end=2027-02-28"
    rows = client.get(f"/api/v1/quality/failure-rates?{q}", headers=ops).json()
    l1 = [
        (r["month"], r["units"], r["failures"], r["per_1000"]) for r in rows if r["group"] == "L1"
    ]
    assert l1 == [("2027-01", 1, 0, 0.0), ("2027-02", 1, 1, 1000.0)]
    l2 = [r["failures"] for r in rows if r["group"] == "L2"]
    assert l2 == [0, 0]
    modes = client.get("/api/v1/quality/failure-modes?by=batch", headers=ops).json()
    assert modes == [
        {"group": "L1", "kind": "fault", "name": "motor_wear", "count": 1, "share": 1.0}
    ]
    got = client.get(f"/api/v1/quality/failure-rates?{q}&format=csv", headers=ops)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(got.text)))
    assert {"group": "L1", "month": "2027-02", "units": "1", "failures": "1",
            "per_1000": "1000.0"} in table  # fmt: skip


def test_survival_and_a_comparison_by_batch(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    seed(world)
    ops = bearer(keys["ops"])
    curves = client.get("/api/v1/quality/survival?by=batch&asof=2027-06-30", headers=ops).json()
    l1 = next(c for c in curves if c["group"] == "L1")
    assert l1["units"] == 1 and l1["failed"] == 1 and l1["median_days"] == 40
    assert [(p["day"], p["survival"]) for p in l1["points"]] == [(40, 0.0)]
    l2 = next(c for c in curves if c["group"] == "L2")
    assert l2["failed"] == 0 and l2["points"] == [] and l2["median_days"] is None
    c = client.get(
        "/api/v1/quality/compare?by=batch&a=L1&b=L2&start=2027-01-01&end=2027-07-01",
        headers=ops,
    ).json()
    assert (c["a_failures"], c["b_failures"]) == (1, 0)
    assert c["verdict"].startswith("no evidence that the rates differ")  # one failure


def test_quality_is_fleet_wide_and_ranges_are_kept_sane(
    client: TestClient, keys: dict[str, str]
) -> None:
    for who in ("li", "zhang", "ops-t2"):
        r = client.get("/api/v1/quality/failure-rates", headers=bearer(keys[who]))
        assert r.status_code == 403, who
    ops = bearer(keys["ops"])
    r = client.get("/api/v1/quality/failure-rates?start=2027-05-01&end=2027-01-01", headers=ops)
    assert r.status_code == 200 and r.json() == []  # an empty period, as for the KPIs
    r = client.get("/api/v1/quality/failure-rates?start=2000-01-01&end=2027-03-31", headers=ops)
    months = sorted({row["month"] for row in r.json()})
    assert len(months) == 120 and months[0] == "2017-04" and months[-1] == "2027-03"
    r = client.get("/api/v1/quality/failure-rates?by=colour", headers=ops)
    assert r.status_code == 422
    r = client.get("/api/v1/quality/compare?a=1.0", headers=ops)
    assert r.status_code == 422  # b is required
    assert client.get("/api/v1/quality/failure-rates").status_code == 401


def test_ops_see_each_devices_model_firmware_batch_and_manufacture_date(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            devices.update()
            .where(devices.c.id == "ap-1")
            .values(model="AP-100", firmware="2.1.0", batch="L7",
                    manufactured_on=datetime(2026, 11, 2).date())
        )  # fmt: skip
    listed = client.get("/api/v1/devices?q=ap-1", headers=bearer(keys["ops"])).json()
    (ap1,) = [d for d in listed if d["id"] == "ap-1"]
    assert (ap1["model"], ap1["firmware"], ap1["batch"], ap1["manufactured_on"]) == (
        "AP-100", "2.1.0", "L7", "2026-11-02"
    )  # fmt: skip
