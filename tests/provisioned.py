"""Helpers for tests that attack from outside: devices provisioned with the command line
(the password and ACL files Mosquitto runs with), and the API served by a real uvicorn on
a loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from fleetcare.cli import app
from tests.services import free_port

ENGINE = ("fleetcare-engine", "engine-secret-123")
runner = CliRunner()


@dataclass(frozen=True)
class BrokerFiles:
    data: Path  # the data dir the CLI ran with (its SQLite registry)
    passwords: Path
    acl: Path
    env: dict[str, str]  # FLEETCARE_* for the CLI and an engine with these files

    @property
    def data_args(self) -> list[str]:
        return ["--data-dir", str(self.data)]


def broker_files(tmp_path: Path, *, pid_file: Path | None = None) -> BrokerFiles:
    pw, acl = tmp_path / "passwords", tmp_path / "acl"
    env = {
        "FLEETCARE_BROKER__PASSWORD_FILE": str(pw),
        "FLEETCARE_BROKER__ACL_FILE": str(acl),
        "FLEETCARE_MQTT__USERNAME": ENGINE[0],
        "FLEETCARE_MQTT__PASSWORD": ENGINE[1],
    }
    if pid_file is not None:
        env["FLEETCARE_BROKER__PID_FILE"] = str(pid_file)
    return BrokerFiles(tmp_path / "data", pw, acl, env)


def add_purifiers(files: BrokerFiles, *device_ids: str) -> None:
    for device_id in device_ids:
        added = runner.invoke(
            app, [*files.data_args, "devices", "add", device_id, "--type", "purifier"]
        )
        assert added.exit_code == 0, added.output


def provision(files: BrokerFiles, *device_ids: str) -> dict[str, str]:
    """Each device's password, as `fleetcare devices provision` prints it once."""
    out = runner.invoke(app, [*files.data_args, "devices", "provision", *device_ids], env=files.env)
    assert out.exit_code == 0, out.output
    pairs = (line.split(maxsplit=1) for line in out.stdout.splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[0] in device_ids}


@contextmanager
def served(app_: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app_, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
