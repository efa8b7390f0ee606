"""`fleetcare packages …` as an agent uses them, on a generated registry: the plans a
device can have, a sale kept by its id, a renewal from the day the cover ends, the
renewal reminders, and a diy filter shipped."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fleetcare.settings import load_settings
from fleetcare.wiring import open_database
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders
from tests.fleetcare.command_line import fleetcare_in

runner = CliRunner()


def test_an_agent_sells_renews_and_ships_from_the_command_line(tmp_path: Path) -> None:
    fc, env = fleetcare_in(tmp_path / "data")

    registry = tmp_path / "registry.json"
    fc("registry", "generate", "--devices", "30", "--seed", "2", "--output", str(registry))
    fc("registry", "import", str(registry))
    rows = json.loads(registry.read_text())
    packaged = {p["device_id"] for p in rows["packages"]}
    device = next(
        d["id"] for d in rows["devices"]
        if d["device_type"] == "purifier" and d["id"] not in packaged
    )  # fmt: skip
    assert "care-purifier" in fc("packages", "plans", "--device", device)
    assert "no diy option" not in fc(
        "packages", "sell", device, "care-purifier", "--sale-id", "crm-1", "--diy",
        "--days", "sat,sun", "--hours", "09:00-12:00",
    )  # fmt: skip
    assert "already sold" in fc(
        "packages", "sell", device, "care-purifier", "--sale-id", "crm-1", "--diy"
    )
    assert "--hours" in fc("packages", "sell", device, "care-purifier", "--sale-id", "x",
                           "--hours", "9", code=2)  # fmt: skip
    listed = fc("packages", "list", "--device", device)
    assert "crm-1" in listed and "diy" in listed
    package_id = listed.split("crm-1")[0].split()[-2]
    renewed = fc("packages", "renew", package_id, "--sale-id", "crm-2")
    assert "renewed: package #" in renewed
    assert "reminded" in fc("packages", "remind")

    db = open_database(load_settings(None, data_dir=env["FLEETCARE_DATA_DIR"]))
    request = OrderRequest(
        device_id=device, problem_kind="filter_replacement", origin=Origin.AUTO,
        source="rule:t", title="filter due",
    )  # fmt: skip
    order = WorkOrders(db).open_or_attach(request).order
    assert (order.state, order.fulfilment) == (State.OPEN, "diy")
    shipped = fc("packages", "ship", str(order.id), "--carrier", "SF", "--tracking", "SF1")
    assert "in_progress: shipped with SF SF1" in shipped
    again = fc("packages", "ship", str(order.id), "--carrier", "SF", "--tracking", "SF2", code=1)
    assert "only an open diy job can be shipped" in again
