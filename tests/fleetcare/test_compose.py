"""docker-compose.yml is configured with settings that exist (no Docker engine runs here)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from fleetcare.settings import load_settings

ROOT = Path(__file__).parents[2]


def test_compose_has_the_production_shape_and_its_env_is_valid_settings() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"mosquitto", "influxdb", "postgres", "migrate", "ingest"} <= set(services)
    assert services["influxdb"]["image"].startswith("influxdb:1.")
    assert "container_name" not in services["ingest"], "--scale ingest=2 needs no fixed name"
    env = {
        k: re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(v))
        for k, v in services["ingest"]["environment"].items()
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        s = load_settings(None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert s.store.backend == "influxdb" and s.mqtt.url == "mqtt://mosquitto:1883"
    assert s.db.url is not None and s.db.url.startswith("postgresql+psycopg://")
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert re.search(r"^max_queued_messages (\d+)", conf, re.M).group(1) != "1000"  # type: ignore[union-attr]


def test_every_engine_service_runs_a_real_command_with_valid_settings() -> None:
    """Each part of the process set runs alone in compose, as `fleetcare serve` runs it."""
    from typer.testing import CliRunner

    from fleetcare.cli import app

    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    engine = {name: svc for name, svc in services.items() if svc.get("image") == "fleetcare:latest"}
    assert {"migrate", "ingest", "evaluator", "dispatch", "commands", "notify", "api"} <= set(
        engine
    )
    runner = CliRunner()
    for name, svc in engine.items():
        command = svc["command"]
        assert command[0] == "fleetcare", name
        words = [w for w in command[1:] if not w.startswith("-")]
        # the subcommand path (options' values aside) exists and explains itself
        path = words[: 2 if words[0] in ("orders", "notify", "db") else 1]
        out = runner.invoke(app, [*path, "--help"])
        assert out.exit_code == 0, f"{name}: fleetcare {' '.join(path)}: {out.output}"
        env = {
            k: re.sub(r"\$\{(\w+):[-?]([^}]*)\}", r"\2", str(v))
            for k, v in svc["environment"].items()
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            load_settings(None)  # raises on an unknown or invalid setting
        finally:
            os.environ.clear()
            os.environ.update(saved)
