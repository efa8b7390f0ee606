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
