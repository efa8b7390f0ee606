"""`fleetcare rules …`, `fleetcare evaluate-rules` and `fleetcare alerts …` as ops use them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetcare.cli import app
from tests.services import metric_value, within

runner = CliRunner()

GOOD_AND_BAD = """\
rules:
  - id: pm_very_high
    device_type: purifier
    title: PM2.5 very high
    problem_kind: air_quality
    when:
      threshold: {metric: pm25, above: 150, clear: 100}
    work_order: {open: review}
  - id: typo
    device_type: purifier
    title: Typo
    when:
      threshold: {metric: pm_25, above: 1}
    work_order: {open: none}
"""


def test_rules_are_listed_checked_and_shown(tmp_path: Path) -> None:
    f = tmp_path / "team.yaml"
    f.write_text(GOOD_AND_BAD)
    env = {"FLEETCARE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200",
           "FLEETCARE_RULES__FILES": f'["{tmp_path}/*.yaml"]'}  # fmt: skip
    checked = runner.invoke(app, ["rules", "check", str(f)], env=env)
    assert checked.exit_code == 1
    assert f"{f}:9: rule typo" in checked.output and "no metric pm_25" in checked.output
    assert "1 rules OK, 1 problems" in checked.output
    listed = runner.invoke(app, ["rules", "list", "--device-type", "purifier"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "pm_very_high" in listed.output and "purifier_filter_low" in listed.output
    assert "ac_refrigerant_leak" not in listed.output
    shown = runner.invoke(app, ["rules", "show", "water_pump_failure"], env=env)
    assert shown.exit_code == 0 and "pressure_kpa" in shown.output and "for: 1h" in shown.output
    assert runner.invoke(app, ["rules", "show", "nope"], env=env).exit_code == 1


def test_an_evaluation_pass_and_the_alert_commands(tmp_path: Path) -> None:
    from fleet.state import DeviceStateRepository, StateUpdate
    from fleetcare.settings import load_settings
    from fleetcare.wiring import open_database

    env = {"FLEETCARE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    db = open_database(load_settings(None, data_dir=env["FLEETCARE_DATA_DIR"]))
    now = datetime.now(UTC)
    DeviceStateRepository(db).apply(
        [
            StateUpdate(
                "wp-9",
                "water_purifier",
                received_at=now,
                messages=1,
                latest_ts=0,
                metrics={"leak": True},
                online=True,
            )
        ]
    )
    bad = runner.invoke(app, ["evaluate-rules", "--once", "--partition", "2/2"], env=env)
    assert bad.exit_code == 2 and "0 <= k < n" in bad.output
    ran = runner.invoke(app, ["evaluate-rules", "--once"], env=env)
    assert ran.exit_code == 0, ran.output
    assert "1 devices" in ran.output and "fired 1" in ran.output
    listed = runner.invoke(app, ["alerts", "list"], env=env)
    assert "water_leak" in listed.output and "wp-9" in listed.output
    assert "no work order" in listed.output  # wp-9 is not in the service registry
    shown = runner.invoke(app, ["alerts", "show", "1"], env=env)
    assert "fired" in shown.output and "inhibited" in shown.output
    assert runner.invoke(app, ["alerts", "show", "99"], env=env).exit_code == 1

    refused = runner.invoke(app, ["alerts", "silence", "--for", "2", "--comment", "x"], env=env)
    assert refused.exit_code == 2 and "needs a rule, a device or a customer" in refused.output
    made = runner.invoke(
        app,
        ["alerts", "silence", "--for", "2", "--device", "wp-9", "--comment", "plumber"],
        env=env,
    )
    assert made.exit_code == 0 and "silence #1" in made.output
    assert "device=wp-9" in runner.invoke(app, ["alerts", "silences"], env=env).output
    assert runner.invoke(app, ["alerts", "unsilence", "1"], env=env).exit_code == 0
    assert "wp-9" not in runner.invoke(app, ["alerts", "silences"], env=env).output
    assert runner.invoke(app, ["alerts", "unsilence", "1"], env=env).exit_code == 1


RULE_TESTS = """\
rule_files: [team.yaml]
tests:
  - name: a weak pump fires after its hour
    device: {id: wp-1, type: water_purifier}
    interval: 10m
    series:
      # the 2 h maximum drops under 420 once the 600 leaves the window, then `for: 1h`
      pressure_kpa: [600, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350,
                     350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350]
    expect:
      firing: [water_pump_failure]
  - name: an E6 code fires the refrigerant rule
    device: {id: ac-1, type: air_conditioner}
    interval: 10m
    series:
      indoor_fan_rpm: [1100, 1100, 1100]
    events:
      - [1, error_code, E6]
    expect:
      firing: [ac_refrigerant_leak]
  - name: our own rule, and a wrong expectation
    device: {id: ap-1, type: purifier}
    series:
      pm25: [20, 180, 190]
    expect:
      firing: []
"""


def test_rule_unit_tests_pass_and_fail_with_the_difference(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(GOOD_AND_BAD.split("  - id: typo", maxsplit=1)[0])
    tests = tmp_path / "team_test.yaml"
    tests.write_text(RULE_TESTS)
    result = runner.invoke(app, ["rules", "test", str(tests)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("ok") and "weak pump" in line for line in lines)
    assert any(line.startswith("ok") and "E6" in line for line in lines)
    assert any(
        line.startswith("FAIL") and "expected firing nothing, got ['pm_very_high']" in line
        for line in lines
    )
    broken = tmp_path / "broken_test.yaml"
    broken.write_text("tests: [{name: x}]\n")
    bad = runner.invoke(app, ["rules", "test", str(broken)])
    assert bad.exit_code == 2 and "device" in bad.output


def _metrics(port: int) -> str:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.HTTPError:
        return ""


async def test_the_evaluator_serves_prometheus_metrics(tmp_path: Path) -> None:
    import asyncio

    from fleetcare.brokers import free_port
    from fleetcare.rules_runner import run_evaluator
    from fleetcare.settings import load_settings

    port = free_port()
    settings = load_settings(
        None, data_dir=str(tmp_path / "data"), rules={"metrics_port": port, "interval_s": 0.2}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_evaluator(settings, stop))
    try:
        text = ""
        for _ in range(50):
            await asyncio.sleep(0.1)
            text = _metrics(port)
            if "fleetcare_rules_pass_seconds_count 2.0" in text:
                break
        assert "fleetcare_rules_pass_seconds_count 2.0" in text
        assert "fleetcare_rules_last_pass_timestamp_seconds" in text
    finally:
        stop.set()
        await task


async def test_the_evaluator_outlives_a_store_outage_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass that cannot reach the store is counted and retried next interval; the
    evaluator keeps running and logs the outage once, not every pass."""
    import asyncio
    import logging
    from datetime import UTC, datetime

    from fleet.registry import Device, DeviceRegistry
    from fleet.state import DeviceStateRepository, StateUpdate
    from fleetcare.brokers import free_port
    from fleetcare.rules_runner import run_evaluator
    from fleetcare.settings import load_settings
    from fleetcare.wiring import open_database
    from telemetry.records import Reading
    from tests.services import start_influxd

    influxd = start_influxd(tmp_path / "influxdb")
    port = free_port()
    settings = load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        rules={"metrics_port": port, "interval_s": 0.1},
        store={"backend": "influxdb", "influx_url": influxd.url},
    )
    db = open_database(settings)
    DeviceRegistry(db).register([Device("ap-1", "purifier")])
    reading = Reading("purifier", "ap-1", 1, 1, 1_780_000_000_000, {"pm25": 9.0})
    DeviceStateRepository(db).apply([StateUpdate.of_reading(reading, datetime.now(UTC))])
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="fleetcare.rules")
    task = asyncio.create_task(run_evaluator(settings, stop))
    try:
        await asyncio.sleep(1.0)  # up, and passing
        influxd.stop()
        failed = "fleetcare_rules_passes_failed_total"
        assert await within(10, lambda: metric_value(port, failed) >= 3)
        assert not task.done()
    finally:
        influxd.stop()
        stop.set()
        await task
        db.dispose()
    said = [r.getMessage() for r in caplog.records if "evaluation pass failed" in r.getMessage()]
    assert len(said) == 1
