"""Scale-out: two ingest workers on the shared subscription and two evaluators
partitioned by device hash give exactly what one of each gives. Both engines run side by
side on the same Mosquitto, InfluxDB and PostgreSQL server (each with its own databases
and its own ingest group), so the one simulated fleet's every message reaches both."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.rules_replay import PROBLEM_OF
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import Chaos, RunOptions, RunStats, run
from tests.drills.stack import engine_stack, wait
from tests.drills.test_drills import START, inject

SPEED = 3 * 3600.0  # a simulated day in 8 s
QUICK = ("pm_sensor_stuck", "ro_membrane_failure", "pump_failure", "leak")
pytestmark = [pytest.mark.drills, pytest.mark.slow, pytest.mark.timeout(600)]


def test_two_workers_and_two_evaluators_give_what_one_of_each_gives(tmp_path: Path) -> None:
    with engine_stack(tmp_path) as one:
        two = one.sibling("scaled")
        fleet = Fleet.create(FleetSpec(devices=40, seed=31, start=START))
        # the faults the rules catch within two simulated days: a short run
        faulty = inject(fleet, QUICK)
        one.register(fleet)
        two.register(fleet)
        one.start_serve(ingest_workers=1, evaluators=1)
        try:
            two.start_serve(ingest_workers=2, evaluators=2)
            stats = RunStats()
            options = RunOptions(
                speed=SPEED,
                report_interval_s=900,
                duration_s=25,  # three simulated days and a bit
                client_id="scale-fleet",
                chaos=Chaos(duplicate=0.03, malformed=0.01),
            )
            runner = threading.Thread(
                target=run, args=(fleet, one.settings().mqtt, options, None, stats), daemon=True
            )
            runner.start()
            runner.join(120)
            assert not runner.is_alive()
            expected = fleet.truth.published
            for engine in (one, two):
                wait(f"{engine.name}: all stored", lambda e=engine: e.stored() >= expected, 60)

            def alerted(engine: object) -> bool:
                alerts = engine.outcome().alerts  # type: ignore[attr-defined]
                return all(alerts[(d, PROBLEM_OF[f])] for d, f in faulty.items())

            for engine in (one, two):
                wait(
                    f"{engine.name}: every fault alerted",
                    lambda e=engine: alerted(e),
                    60,
                    lambda e=engine: f"faults {faulty}; alerts {dict(e.outcome().alerts)}",
                )
            time.sleep(3)  # a few more passes on the final data
            a, b = one.outcome(), two.outcome()
            assert one.stored() == two.stored() == expected
            assert one.gaps(fleet) == two.gaps(fleet)  # the malformed messages' seqs
            assert a.letters_by_reason == b.letters_by_reason == stats.malformed
            assert set(a.alert_rules) == set(b.alert_rules)
            assert a.orders == b.orders
            assert max(b.orders.values()) == 1
            two.stop_serve()
        finally:
            two.stop_serve()
