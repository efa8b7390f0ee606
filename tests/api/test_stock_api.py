"""Stock and the peak's plan over HTTP: ops without territory limits move and count stock
and set the sales plan; anyone else is refused; a transfer of more than there is says
what there is; a bad sales plan names every bad row."""

from __future__ import annotations

from fastapi.testclient import TestClient

from db.database import Database
from service.registry import ServiceRegistry, parse_doc
from tests.api.test_devices import bearer
from tests.service.test_stock import NETWORK


def test_ops_move_receive_and_count_stock_and_read_the_ledger(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    ServiceRegistry(world).load(parse_doc(NETWORK))  # type: ignore[arg-type]
    ops = bearer(keys["ops"])
    r = client.post(
        "/api/v1/stock/transfers",
        json={"sku": "AP-HEPA-01", "qty": 5, "source": "central:cn",
              "destination": "distribution:dc-east", "note": "peak"},
        headers=ops,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["actor"] == "ops" and r.json()["kind"] == "transfer"
    held = client.get("/api/v1/stock?sku=AP-HEPA-01", headers=ops).json()
    assert {(h["location"], h["qty"]) for h in held} == {
        ("central:cn", 35), ("distribution:dc-east", 15), ("outlet:o-1", 3), ("van:tech-1", 2),
    }  # fmt: skip
    assert [h["level"] for h in held] == ["central", "distribution", "outlet", "van"]
    r = client.post(
        "/api/v1/stock/purchase-orders",
        json={"sku": "AC-INSTALL-KIT", "qty": 50, "location": "central:cn",
              "expected_on": "2099-01-04", "reference": "PO-1"},
        headers=ops,
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["due"] == 50
    po = r.json()["id"]
    listed = client.get("/api/v1/stock/purchase-orders", headers=ops).json()
    assert [(p["id"], p["reference"]) for p in listed] == [(po, "PO-1")]
    r = client.post(
        "/api/v1/stock/receipts",
        json={"sku": "AC-INSTALL-KIT", "qty": 50, "location": "central:cn", "order_id": po},
        headers=ops,
    )
    assert r.status_code == 201 and r.json()["note"] == f"purchase order #{po}"
    assert client.get("/api/v1/stock/purchase-orders", headers=ops).json() == []
    r = client.post(
        "/api/v1/stock/counts",
        json={"sku": "AP-HEPA-01", "counted": 2, "location": "outlet:o-1"},
        headers=ops,
    )
    assert r.status_code == 201 and r.json()["qty"] == -1
    ledger = client.get("/api/v1/stock/moves?location=outlet:o-1", headers=ops).json()
    assert [m["kind"] for m in ledger] == ["count"]


def test_more_than_there_is_is_a_conflict_and_a_bad_location_says_how_to_write_it(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    ServiceRegistry(world).load(parse_doc(NETWORK))  # type: ignore[arg-type]
    ops = bearer(keys["ops"])
    move = {"sku": "AP-HEPA-01", "qty": 4, "source": "outlet:o-1", "destination": "van:tech-1"}
    r = client.post("/api/v1/stock/transfers", json=move, headers=ops)
    assert r.status_code == 409 and "holds 3 of AP-HEPA-01, not the 4" in r.json()["detail"]
    r = client.post(
        "/api/v1/stock/transfers", json={**move, "source": "shelf-7", "qty": 1}, headers=ops
    )
    assert r.status_code == 422 and "central|distribution|outlet|van" in r.text
    r = client.post("/api/v1/stock/transfers", json={**move, "qty": 0}, headers=ops)
    assert r.status_code == 422
    r = client.post("/api/v1/stock/transfers", json={**move, "qty": 1, "extra": 1}, headers=ops)
    assert r.status_code == 422


def test_only_ops_without_territory_limits_see_or_move_the_makers_stock(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    ServiceRegistry(world).load(parse_doc(NETWORK))  # type: ignore[arg-type]
    move = {"sku": "AP-HEPA-01", "qty": 1, "source": "central:cn", "destination": "outlet:o-1"}
    for who in ("li", "zhang", "ops-t2"):
        h = bearer(keys[who])
        assert client.get("/api/v1/stock", headers=h).status_code == 403, who
        assert client.post("/api/v1/stock/transfers", json=move, headers=h).status_code == 403
        assert client.put("/api/v1/sales-plan", json=[], headers=h).status_code == 403
        assert client.get("/api/v1/stock-plan", headers=h).status_code == 403
    assert client.get("/api/v1/stock").status_code == 401


def test_the_sales_plan_in_json_and_csv_and_the_plan_it_drives(
    client: TestClient, keys: dict[str, str], world: Database
) -> None:
    ServiceRegistry(world).load(parse_doc(NETWORK))  # type: ignore[arg-type]
    ops = bearer(keys["ops"])
    r = client.put(
        "/api/v1/sales-plan",
        json=[{"region_id": "east", "model": "KFR-35GW", "week": "2099-11-11", "units": 90}],
        headers=ops,
    )
    assert r.status_code == 200 and r.json() == {"saved": 1}
    csv_body = "region_id,model,week,units\neast,KFR-35GW,2099-11-16,40\n"
    r = client.put(
        "/api/v1/sales-plan", content=csv_body, headers={**ops, "Content-Type": "text/csv"}
    )
    assert r.status_code == 200
    text = client.get("/api/v1/sales-plan?format=csv", headers=ops).text
    assert text.splitlines() == [
        "region_id,model,week,units",
        "east,KFR-35GW,2099-11-09,90",  # kept as its Monday
        "east,KFR-35GW,2099-11-16,40",
    ]
    r = client.put(
        "/api/v1/sales-plan",
        json=[
            {"region_id": "east", "model": "KFR-35GW", "week": "2099-11-11", "units": -1},
            {"region_id": "mars", "model": "KFR-35GW", "week": "2099-11-11", "units": 1},
        ],
        headers=ops,
    )
    assert r.status_code == 422 and "row 1, units" in r.json()["detail"]
    r = client.put(
        "/api/v1/sales-plan",
        json=[{"region_id": "mars", "model": "KFR-35GW", "week": "2099-11-11", "units": 1}],
        headers=ops,
    )
    assert r.status_code == 422 and "no region 'mars'" in r.json()["detail"]
    r = client.put("/api/v1/sales-plan", content="{oops", headers=ops)
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]
    plan = client.get("/api/v1/stock-plan?weeks=4", headers=ops).json()
    assert set(plan) == {"start", "weeks", "unsupplied", "demand", "moves"}
    assert {r["level"] for r in plan["demand"]} >= {"van", "outlet", "distribution", "central"}
    csv_moves = client.get("/api/v1/stock-plan?format=csv&show=moves", headers=ops).text
    assert csv_moves.startswith("kind,sku,qty,source,destination,release,arrival,late")
