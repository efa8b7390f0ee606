"""`fleetcare network …` on a generated registry: the hierarchy, an outlet declining a
job it was offered (the job moves to the region's next outlet), and the statement."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fleetcare.settings import load_settings
from fleetcare.wiring import open_database
from service.lifecycle import Origin
from service.orders import OrderRequest, WorkOrders
from tests.fleetcare.command_line import fleetcare_in

runner = CliRunner()


def test_the_network_from_the_command_line(tmp_path: Path) -> None:
    fc, env = fleetcare_in(tmp_path / "data")

    registry = tmp_path / "registry.json"
    fc("registry", "generate", "--devices", "30", "--seed", "2", "--output", str(registry))
    rows = json.loads(registry.read_text())
    for o in rows["outlets"]:  # every outlet answers for its jobs within two hours
        o["accept_hours"] = 2
    registry.write_text(json.dumps(rows))
    fc("registry", "import", str(registry))
    shown = fc("network", "show")
    assert "East region" in shown and "accepts within 2 h" in shown

    device = next(d for d in rows["devices"] if d["device_type"] == "purifier")
    home = next(t["outlet_id"] for t in rows["territories"] if t["id"] == device["territory_id"])
    db = open_database(load_settings(None, data_dir=env["FLEETCARE_DATA_DIR"]))
    request = OrderRequest(
        device_id=device["id"], problem_kind="inspection", origin=Origin.APP,
        source="app", title="rattles",
    )  # fmt: skip
    order = WorkOrders(db).open_or_attach(request).order
    assert str(order.id) in fc("network", "offers", "--outlet", home)
    assert "say why" in fc("network", "answer", str(order.id), "--decline", code=1)
    moved = fc("network", "answer", str(order.id), "--decline", "--reason", "closed today")
    assert f"at outlet {home}" not in moved and "(offered)" in moved
    statement = fc("network", "statement", "--from", "2026-01-01", "--to", "2036-01-01")
    assert statement.startswith("outlet_id,region_id,jobs,")
    assert "--to must be after" in fc(
        "network", "statement", "--from", "2026-02-01", "--to", "2026-01-01", code=2
    )
