"""The `fleetcare` command as a newcomer uses it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from fleetcare.cli import app
from fleetcare.settings import load_settings

runner = CliRunner()


def test_schema_prints_the_contract_and_matches_the_committed_copy() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["properties"]["telemetry"]["properties"]) == {
        "purifier",
        "water_purifier",
        "air_conditioner",
        "dehumidifier",
    }
    committed = Path(__file__).parents[2] / "docs" / "device-contract.schema.json"
    assert json.loads(committed.read_text()) == doc, (
        "run: fleetcare schema -o docs/device-contract.schema.json"
    )


def test_an_unknown_device_type_gets_a_clear_error() -> None:
    result = runner.invoke(app, ["schema", "toaster"])
    assert result.exit_code == 2
    assert "known types" in result.output


def test_settings_come_from_env_over_file(tmp_path: Path, monkeypatch: object) -> None:
    cfg = tmp_path / "fc.toml"
    cfg.write_text(
        'data_dir = "/from/file"\n[store]\nbackend = "influxdb"\n[ingest]\nbatch_size = 123\n'
    )
    os.environ["FLEETCARE_INGEST__BATCH_SIZE"] = "456"
    try:
        s = load_settings(str(cfg))
    finally:
        del os.environ["FLEETCARE_INGEST__BATCH_SIZE"]
    assert s.data_dir == "/from/file" and s.store.backend == "influxdb"
    assert s.ingest.batch_size == 456


def test_a_bad_setting_names_the_field() -> None:
    os.environ["FLEETCARE_STORE__BACKEND"] = "oracle"
    try:
        result = runner.invoke(app, ["telemetry", "count"])
    finally:
        del os.environ["FLEETCARE_STORE__BACKEND"]
    assert result.exit_code == 2
    assert "store.backend" in result.output


def test_db_devices_and_dead_letter_commands(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from fleetcare.wiring import open_database
    from ingest.dead_letters import DeadLetterRepository, NewDeadLetter
    from tests.ingest.helpers import telemetry

    d = ["--data-dir", str(tmp_path)]
    os.environ["FLEETCARE_DB__AUTO_MIGRATE"] = "false"
    try:
        assert (
            "behind: run `fleetcare db upgrade`" in runner.invoke(app, [*d, "db", "current"]).stdout
        )
        from db.database import Database

        head = Database(f"sqlite:///{tmp_path / 'head.sqlite3'}").head()
        assert f"empty -> {head}" in runner.invoke(app, [*d, "db", "upgrade"]).stdout
        assert "up to date" in runner.invoke(app, [*d, "db", "current"]).stdout
    finally:
        del os.environ["FLEETCARE_DB__AUTO_MIGRATE"]
    bad_type = runner.invoke(app, [*d, "devices", "add", "p-1", "--type", "toaster"])
    assert bad_type.exit_code == 1 and "no profile for device type 'toaster'" in bad_type.output
    assert "purifier" in bad_type.output  # the known families
    assert runner.invoke(app, [*d, "devices", "add", "p-1", "--type", "purifier"]).exit_code == 0

    settings = load_settings(None, data_dir=str(tmp_path))
    repo = DeadLetterRepository(open_database(settings))
    now = datetime.now(UTC)
    repo.record(
        [
            NewDeadLetter(*telemetry("p-1", 1), "unregistered", "was not registered", now),
            NewDeadLetter("fleetcare/v1/purifier/p-1/telemetry", b"\xff", "not_utf8", "x", now),
        ]
    )
    shown = runner.invoke(app, [*d, "deadletters", "show", "2"])
    assert shown.exit_code == 0 and "hex: ff" in shown.stdout and "not_utf8" in shown.stdout
    assert runner.invoke(app, [*d, "deadletters", "show", "99"]).exit_code == 1
    assert runner.invoke(app, [*d, "deadletters", "replay"]).exit_code == 2  # says what to name
    dry = runner.invoke(app, [*d, "deadletters", "replay", "--all", "--dry-run"])
    assert "would store 1; still rejected 1" in dry.stdout
    done = runner.invoke(app, [*d, "deadletters", "replay", "--all"])
    assert "stored 1; still rejected 1" in done.stdout
    assert [x.reason for x in repo.list()] == ["not_utf8"]
    count = runner.invoke(app, [*d, "telemetry", "count", "--device", "p-1"])
    assert count.stdout.strip() == "1"


def test_a_generated_registry_matches_the_simulated_fleet_and_imports(tmp_path: Path) -> None:
    import json

    from device_sim.fleet import Fleet, FleetSpec

    out = tmp_path / "registry.json"
    env = {"FLEETCARE_DATA_DIR": str(tmp_path / "data")}
    r = runner.invoke(
        app,
        ["registry", "generate", "--devices", "40", "--seed", "3", "--output", str(out)],
        env=env,
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())
    fleet = Fleet.create(FleetSpec(devices=40, seed=3, start=0))
    assert [d["id"] for d in rows["devices"]] == fleet.ids
    assert [d["device_type"] for d in rows["devices"]] == [
        fleet.truth.devices[i].device_type for i in fleet.ids
    ]
    r = runner.invoke(app, ["registry", "import", str(out)], env=env)
    assert r.exit_code == 0, r.output
    assert "'devices': 40" in r.output


def test_train_then_list_activate_and_score_a_model(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    small = ["--devices", "60", "--days", "30", "--health-devices", "90", "--health-days", "30"]
    trained = runner.invoke(app, [*data, "train", *small])
    assert trained.exit_code == 0, trained.output
    assert "saved filter_life" in trained.output and "(active)" in trained.output
    assert "saved health" in trained.output
    listed = runner.invoke(app, [*data, "models", "list"])
    assert listed.exit_code == 0 and "filter_life" in listed.output and "*" in listed.output
    assert "health" in listed.output
    (version,) = [d.name for d in (tmp_path / "models" / "filter_life").iterdir() if d.is_dir()]
    unknown = runner.invoke(app, [*data, "models", "activate", "filter_life", "v-nope"])
    assert unknown.exit_code == 1 and version in unknown.output  # names the ones there are
    scored = runner.invoke(app, [*data, "models", "score"])
    assert scored.exit_code == 0, scored.output
    assert "scored 0 devices" in scored.output  # an empty registry: nothing to score
    assert "health" in scored.output and "0 devices judged" in scored.output


def test_score_without_a_trained_model_says_how_to_get_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "models", "score"])
    assert result.exit_code == 1
    assert "fleetcare train" in result.output


def test_users_create_prints_a_key_once_that_the_api_accepts(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fleetcare.apiserver import build_api
    from fleetcare.settings import Settings

    data = ["--data-dir", str(tmp_path)]
    made = runner.invoke(app, [*data, "users", "create", "root", "--role", "admin"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("fc_")
    again = runner.invoke(app, [*data, "users", "create", "root", "--role", "admin"])
    assert again.exit_code == 1 and "exists already" in again.output
    boss = runner.invoke(app, [*data, "users", "create", "x", "--role", "boss"])
    assert boss.exit_code == 2 and "customer, technician, ops, admin" in boss.output
    with TestClient(build_api(Settings(data_dir=str(tmp_path)))) as client:
        r = client.get("/api/v1/devices", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json() == []
    revoked = runner.invoke(app, [*data, "users", "revoke", key[:9]])
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output


def test_the_help_lists_every_command_in_a_panel_of_its_subject() -> None:
    from fleetcare.cli import GROUPS, PANEL_OF

    names = {
        c.name or c.callback.__name__.replace("_", "-")  # type: ignore[union-attr]
        for g in GROUPS
        for c in g.app.registered_commands
    } | {sub.name for g in GROUPS for sub in g.app.registered_groups}
    assert names == set(PANEL_OF)
    shown = runner.invoke(app, ["--help"]).stdout
    assert "More" in shown and "bench" in shown  # the benchmarks, mounted by entry point
    try_it = shown.split("Try it", 1)[1].split("Run the engine", 1)[0]
    assert "│ demo " in try_it and "│ sim " in try_it and "│ serve " not in try_it


def test_evaluate_judges_the_families_known_only_from_their_profiles(tmp_path: Path) -> None:
    report = tmp_path / "families.md"
    done = runner.invoke(
        app,
        ["--data-dir", str(tmp_path), "evaluate", "--sim", "--families-only",
         "--family-devices", "50", "--family-days", "60", "--report", str(report)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    row = next(line for line in report.read_text().splitlines() if line.startswith("| dehum"))
    cells = [c.strip() for c in row.split("|")]
    judged = int(cells[4])
    assert judged > 20  # exhaustions dated 14 days ahead and checked against the truth
    # the job policy replayed on every life, on our dates and on the rule of thumb's
    ours, rule = (tuple(float(x.rstrip(" %")) for x in c.split(" / ")) for c in cells[8:10])
    assert all(0 <= x <= 100 for x in (*ours, *rule)) and ours[0] > 50


def test_evaluate_follows_the_protocol_draws_the_detection_and_keeps_other_sections(
    tmp_path: Path,
) -> None:
    import xml.etree.ElementTree as ET

    from models.evaluation.report import KEPT

    report = tmp_path / "model-quality.md"
    # a section another command measured, below the marker: rewriting the report keeps it
    report.write_text(f"# an older report\n{KEPT}\n## Real data\nmeasured elsewhere\n")
    done = runner.invoke(
        app,
        ["--data-dir", str(tmp_path), "evaluate", "--months", "7", "--clean-months", "",
         "--devices", "20", "--days", "30", "--fault-devices", "50", "--fault-days", "30",
         "--fault-rate", "50", "--train-devices", "20", "--train-health-devices", "50",
         "--train-days", "30", "--family-devices", "0", "--report", str(report)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    text = report.read_text()
    assert "## The protocol" in text and "| Jul 2027, noisy |" in text
    assert "fleetcare evaluate --devices 20" in text  # the command that made it
    assert "## Faults from data alone: the general detector" in text
    assert "| Air purifier | (no fault) |" in text
    # a month of a 50-device fleet gives the namers no verdicts to learn from: no section
    assert "With the fault namer" not in text
    assert text.endswith(f"{KEPT}\n## Real data\nmeasured elsewhere\n")
    assert "an older report" not in text
    chart = ET.parse(tmp_path / "model-detection.svg").getroot()
    assert chart.tag.endswith("svg") and len(chart.findall("{*}polyline")) == 1


def test_evaluate_says_what_to_fix_in_a_bad_month(tmp_path: Path) -> None:
    done = runner.invoke(app, ["--data-dir", str(tmp_path), "evaluate", "--months", "13"])
    assert done.exit_code == 2
    assert "1 to 12" in done.output
