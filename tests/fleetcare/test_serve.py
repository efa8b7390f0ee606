"""`fleetcare serve`: the production process set under one supervisor — every part up
and ready, telemetry stored by the ingest workers, a part killed with -9 restarted, and
SIGTERM stopping them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetcare.brokers import mosquitto_available, start_mosquitto
from fleetcare.cli import app
from tests.ingest.helpers import publish, telemetry
from tests.services import free_port, missing, ready, wait

runner = CliRunner()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_serve_runs_every_part_restarts_a_killed_one_and_stops_them_all(tmp_path: Path) -> None:
    if not mosquitto_available():
        missing("mosquitto")
    broker = start_mosquitto(tmp_path / "broker")
    data, health, api = tmp_path / "data", free_port(), free_port()
    env = {
        **os.environ,
        "FLEETCARE_MQTT__URL": f"mqtt://127.0.0.1:{broker.port}",
        "FLEETCARE_API__PORT": str(api),
        "FLEETCARE_INGEST__METRICS_PORT": "0",
        "FLEETCARE_RULES__METRICS_PORT": "0",
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "fleetcare", "--data-dir", str(data), "serve"),
            *("--ingest-workers", "2", "--health-port", str(health), "--grace", "20"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = wait("every part ready", lambda: ready(health))
        parts = status["parts"]
        assert set(parts) == {"ingest-0", "ingest-1", "rules-0", "dispatch", "commands",
                              "notify", "api"}  # fmt: skip
        assert wait("the API ready", lambda: ready(api))
        # the ingest workers store what devices send
        publish(broker.port, [telemetry("ap-serve", seq) for seq in range(1, 41)])

        def stored() -> bool:
            out = runner.invoke(app, ["--data-dir", str(data), "telemetry", "count"])
            return out.exit_code == 0 and out.stdout.strip() == "40"

        wait("40 readings stored", stored)
        # a part killed with -9 is started again, under the same name
        victim = parts["ingest-0"]["pid"]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> dict[str, Any] | None:
            s = ready(health)
            p = s["parts"]["ingest-0"] if s else None
            return s if p and p["pid"] != victim and p["restarts"] == 1 else None

        after = wait("ingest-0 restarted", replaced)
        publish(broker.port, [telemetry("ap-serve", seq) for seq in range(41, 51)])
        wait(
            "50 readings stored",
            lambda: (
                runner.invoke(app, ["--data-dir", str(data), "telemetry", "count"]).stdout.strip()
                == "50"
            ),
        )
        # SIGTERM: every part stops, gracefully, and the supervisor exits 0
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        pids = [p["pid"] for p in after["parts"].values()]
        assert all(_gone(pid) for pid in pids), out
        assert "part died; restarting" in out
        assert "all parts stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.stop()


def test_serve_refuses_an_unknown_part(tmp_path: Path) -> None:
    out = runner.invoke(app, ["--data-dir", str(tmp_path), "serve", "--only", "ingest,toaster"])
    assert out.exit_code == 2
    assert "ingest, rules, dispatch, commands, notify, api" in " ".join(out.output.split())


@pytest.mark.parametrize("only", ["api", "ingest,rules"])
def test_serve_plans_only_the_parts_asked_for(only: str) -> None:
    from fleetcare.serve import ServePlan, parts
    from fleetcare.settings import Settings

    plan = ServePlan(ingest_workers=2, evaluators=2, only=frozenset(only.split(",")))
    names = [p.name for p in parts(Settings(), plan)]
    if only == "api":
        assert names == ["api"]
    else:
        assert names == ["ingest-0", "ingest-1", "rules-0", "rules-1"]
        rules = [p for p in parts(Settings(), plan) if p.name.startswith("rules")]
        assert [p.args[-1] for p in rules] == ["0/2", "1/2"]
