"""`fleetcare orders …` and `fleetcare notify …` as ops use them, on a generated registry;
the callback queue, complaint cases and settlement (with why each held line is held)
from the command line, and the dispatcher's pass escalating late complaints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.database import Database
from fleetcare.cli import app
from fleetcare.settings import load_settings
from fleetcare.wiring import open_database
from service.callbacks import Callbacks
from service.completion import Completion
from service.dispatch import Dispatcher
from service.lifecycle import Origin
from service.orders import OrderRequest, WorkOrders
from tests.fleetcare.command_line import fleetcare_in
from tests.service.test_completion import NOW, make_site, on_site, report

runner = CliRunner()


def test_ops_walk_an_order_through_the_commands(tmp_path: Path) -> None:
    fc, env = fleetcare_in(tmp_path / "data")

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


@pytest.fixture
def site_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The commands' database (by env): an outlet, its technician, two devices."""
    url = f"sqlite:///{tmp_path / 'fc.sqlite3'}"
    monkeypatch.setenv("FLEETCARE_DB__URL", url)
    monkeypatch.setenv("FLEETCARE_DATA_DIR", str(tmp_path))
    db = Database(url)
    make_site(db, tmp_path)
    yield db
    db.dispose()


def test_the_callback_queue_complaints_and_settlement_from_the_command_line(
    site_db: Database, tmp_path: Path
) -> None:
    orders = WorkOrders(site_db)
    completion = Completion(orders, tmp_path / "photos")
    unhappy, waiting = (on_site(orders, "wp-1", p) for p in ("pump_failure", "leak"))
    for oid in (unhappy, waiting):
        completion.complete(oid, report(), now=NOW)
    Callbacks(orders).rate(unhappy, 1, "it leaks again", now=NOW)

    queue = runner.invoke(app, ["orders", "callbacks"])
    assert queue.exit_code == 0, queue.output
    assert f"#{waiting} done" in queue.output and f"#{unhappy} " not in queue.output

    cases = runner.invoke(app, ["orders", "complaints"])
    assert cases.exit_code == 0, cases.output
    assert f"open at outlet  job #{unhappy}" in cases.output and "it leaks again" in cases.output

    lines = runner.invoke(
        app, ["orders", "settlement", "--from", "2026-11-01", "--to", "2026-12-01", "--items"]
    )
    assert lines.exit_code == 0, lines.output
    by_order = {line.split(",")[0]: line for line in lines.output.splitlines()[1:]}
    assert by_order[str(unhappy)].endswith(
        ",held,,callback: not satisfied; complaint 1 open at outlet level"
    )
    assert by_order[str(waiting)].endswith(",awaiting_callback,,no callback yet")
    bad = runner.invoke(
        app,
        [
            "orders",
            "settlement",
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-01",
            "--unreachable",
            "maybe",
        ],
    )
    assert bad.exit_code == 2 and "'pay' or 'hold'" in bad.output

    # nothing under warranty here (no terms on record): the claim is empty, with its header
    claims = runner.invoke(
        app, ["orders", "warranty-claims", "--from", "2026-11-01", "--to", "2026-12-01"]
    )
    assert claims.exit_code == 0, claims.output
    assert claims.output.splitlines() == ["outlet_id,jobs,parts_cents,labour_cents,total_cents"]

    # days later: the dispatcher's pass sends the unresolved case up to the region
    passed = runner.invoke(app, ["orders", "dispatch"])
    assert passed.exit_code == 0, passed.output
    assert "complaint #1 escalated to the region" in passed.output


def test_shop_orders_import_from_csv_and_again_without_a_second_job(
    site_db: Database, tmp_path: Path
) -> None:
    sheet = tmp_path / "shop-orders.csv"
    sheet.write_text(
        "shop_id,shop_order_id,customer_name,phone,device_type,model,serial,purchased_on,"
        "territory_id,address,preferred_time\n"
        "gome-1,A-1,Zhao,+86139000001,water_purifier,,SN-A1,2026-12-01,t-1,9 Road,\n"
        "gome-1,A-2,Qian,+86139000002,air_conditioner,,,2026-12-02,t-9,10 Road,evenings\n"
        "gome-1,A-3,Sun,+86139000003,air_conditioner,,,2026-12-03,t-1,11 Road,evenings\n"
    )
    first = runner.invoke(app, ["orders", "import-shop-orders", str(sheet)])
    assert first.exit_code == 1, first.output  # one bad row
    assert "line 2: gome-1/A-1 → job #1 (open)" in first.output
    assert "line 3:" in first.output and "t-9" in first.output
    assert "line 4: gome-1/A-3 → job #2 (open)" in first.output
    again = runner.invoke(app, ["orders", "import-shop-orders", str(sheet)])
    assert "line 2: gome-1/A-1 → received before: job #1" in again.output


def test_the_dispatchers_pass_raises_a_quality_warning_for_a_failing_batch_once(
    tmp_path: Path,
) -> None:
    from db.tables import device_sites, devices
    from tests.service.helpers import repaired

    fc, env = fleetcare_in(tmp_path / "data")
    registry = tmp_path / "registry.json"
    fc("registry", "generate", "--devices", "30", "--seed", "2", "--output", str(registry))
    fc("registry", "import", str(registry))
    purifier = next(
        d["id"] for d in json.loads(registry.read_text())["devices"]
        if d["device_type"] == "purifier"
    )  # fmt: skip
    db = open_database(load_settings(None, data_dir=env["FLEETCARE_DATA_DIR"]))
    with db.engine.begin() as conn:
        conn.execute(devices.update().values(batch="L-ok"))
        conn.execute(devices.update().where(devices.c.id == purifier).values(batch="L-bad"))
        conn.execute(device_sites.update().values(installed_on=datetime(2025, 1, 1).date()))
    for day in range(1, 8):  # one unit failing again and again this week
        repaired(db, purifier, datetime.now(UTC) - timedelta(days=day))
    said = fc("orders", "dispatch")
    # flagged in the first month its failures stand out (the week may straddle two)
    assert "quality warning: batch L-bad fails above its peers (" in said
    assert "failures in 3 months against 0 among its peers)" in said
    assert "quality warning" not in fc("orders", "dispatch")  # raised once
