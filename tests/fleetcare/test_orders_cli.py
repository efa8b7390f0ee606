"""`fleetcare orders …` and `fleetcare notify …` as ops use them, on a generated registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from fleetcare.cli import app
from fleetcare.settings import load_settings
from fleetcare.wiring import open_database
from service.dispatch import Dispatcher
from service.lifecycle import Origin
from service.orders import OrderRequest, WorkOrders

runner = CliRunner()


def test_ops_walk_an_order_through_the_commands(tmp_path: Path) -> None:
    env = {"FLEETCARE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}

    def fc(*args: str) -> str:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == 0, r.output
        return r.output

    registry = tmp_path / "registry.json"
    fc("registry", "generate", "--devices", "30", "--seed", "2", "--output", str(registry))
    fc("registry", "import", str(registry))
    devices = json.loads(registry.read_text())["devices"]
    purifier = next(d["id"] for d in devices if d["device_type"] == "purifier")

    db = open_database(load_settings(None, data_dir=env["FLEETCARE_DATA_DIR"]))
    order = (
        WorkOrders(db)
        .open_or_attach(
            OrderRequest(
                device_id=purifier,
                problem_kind="filter_replacement",
                origin=Origin.APP,
                source="app",
                title="Filter, please",
            )
        )
        .order
    )
    assert "assigned 1" in fc("orders", "dispatch")
    assert "assigned" in fc("orders", "list")
    Dispatcher(db).accept(order.id, WorkOrders(db).get(order.id).technician_id or "")

    free = fc("orders", "slots", str(order.id)).splitlines()
    assert free, "an accepted order has free slots"
    offered = fc("orders", "slots", str(order.id), "--offer", "--count", "2")
    assert "offered 2 slots" in offered
    first = offered.splitlines()[0].split()[0]

    refused = runner.invoke(
        app, ["orders", "book", str(order.id), "--at", "2020-01-01T10:00+00:00"], env=env
    )
    assert refused.exit_code == 1 and "too soon" in refused.output
    garbage = runner.invoke(app, ["orders", "book", str(order.id), "--at", "tomorrow"], env=env)
    assert garbage.exit_code == 2 and "ISO time" in garbage.output
    assert "scheduled" in fc("orders", "book", str(order.id), "--at", first)

    listed = fc("notify", "list", "--order", str(order.id))
    for kind in ("job_opened", "slot_proposed", "appointment_confirmed"):
        assert kind in listed
    sent = fc("notify", "send", "--once")
    assert "sent" in sent and "held for quiet hours" in sent

    today = datetime.now(UTC).date()
    week = [f"--from={today - timedelta(days=7)}", f"--to={today + timedelta(days=1)}"]
    assert "opened" in fc("orders", "kpis", *week)
    csv_path = tmp_path / "kpis.csv"
    fc("orders", "kpis", *week, "--by", "all", "--output", str(csv_path))
    assert csv_path.read_text().splitlines()[1].startswith("all,")
    bad_zone = runner.invoke(app, ["orders", "kpis", *week, "--timezone", "Mars/Base"], env=env)
    assert bad_zone.exit_code == 2 and "IANA" in bad_zone.output

    other = next(d["id"] for d in devices if d["device_type"] == "purifier" and d["id"] != purifier)
    predictions = tmp_path / "predictions.json"
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    predictions.write_text(
        json.dumps(
            [{"device_id": other, "stage": "main", "exhausted_at": soon, "probability": 0.5}]
        )
    )
    assert "stored 1" in fc("orders", "predictions", str(predictions))
    predictions.write_text(json.dumps([{"device_id": "ghost", "stage": "main",
                                        "exhausted_at": soon}]))  # fmt: skip
    ghost = runner.invoke(app, ["orders", "predictions", str(predictions)], env=env)
    assert ghost.exit_code == 2 and "unknown devices: ghost" in ghost.output
    forecast = fc("orders", "parts-forecast", "--weeks", "4")
    assert "AP-HEPA-01" in forecast and ",0.5," in forecast  # the prediction, half expected
