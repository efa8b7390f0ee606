"""Fault drills: a simulated fleet runs through the production process set —
`fleetcare serve` with two ingest workers on the shared subscription and a rules
evaluator, against a real Mosquitto, InfluxDB and PostgreSQL — while the drill kills an
ingest worker with -9, stops InfluxDB for 30 s, restarts Mosquitto, restarts PostgreSQL
and floods malformed and duplicate messages. Then everything is reconciled with the
simulator's ground truth: every good message stored exactly once, every malformed one
dead-lettered with its reason, every injected fault alerted once, no duplicate job.

Run them alone with `pytest -m drills`; they are part of the full suite."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from bench.rules_replay import PROBLEM_OF, ROUTINE
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import Chaos, RunOptions, RunStats, run
from tests.drills.stack import Stack, engine_stack, wait
from tests.ingest.helpers import publish, topic
from tests.rules.test_sim_faults import COVERED

pytestmark = [pytest.mark.drills, pytest.mark.slow, pytest.mark.timeout(900)]

DAY = 86400.0
# summer: air conditioners cool, which is when their faults show (tests/rules/test_sim_faults)
START = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
SPEED = 4 * 3600.0  # simulated seconds per wall second: a day in 6 s
# faults a built-in rule diagnoses within a week of onset (all but motor wear), one device each
FAULTS = {fault: kind for fault, kind in COVERED.items() if fault != "motor_wear"}


def inject(fleet: Fleet, faults: tuple[str, ...] = tuple(FAULTS)) -> dict[str, str]:
    """Each fault on its own device, half a simulated day in: {device: fault}. Only
    units already installed (a late install is silent until its day comes)."""
    pools = {
        g.device_type: [d for d in g.ids if fleet.installed_at(d) <= fleet.t]
        for g in fleet.groups.values()
    }
    faulty = {}
    for fault in faults:
        device_type = FAULTS[fault]
        device = pools[device_type].pop(0)
        fleet.inject(device, fault, fleet.t + 0.5 * DAY)
        faulty[device] = fault
    return faulty


def _flood(stack: Stack, sim_ms: int) -> tuple[int, dict[str, int]]:
    """A misbehaving client's burst: 300 good readings each sent three times, 600 that are
    not JSON, 300 whose payload names another device than the topic. Every one distinct
    (so each is its own dead letter); the readings' time is the fleet's clock."""
    device = "drill-flood-ap"
    good = [
        (
            topic("purifier", device),
            orjson.dumps(
                {
                    "v": 1,
                    "device_id": device,
                    "ts": sim_ms - 300_000 + i,
                    "seq": i + 1,
                    "boot": 1,
                    "metrics": {"pm25": 12.0 + i % 7},
                }
            ),
        )
        for i in range(300)
    ]
    not_json = [(topic("purifier", device), b"{broken %d" % i) for i in range(600)]
    mismatch = [
        (topic("purifier", f"drill-flood-other-{i}"), payload)
        for i, (_, payload) in enumerate(good)
    ]
    publish(stack.broker.port, [*good, *not_json, *good, *mismatch, *good], client_id="flood")
    return len(good), {"not_json": len(not_json), "device_mismatch": len(mismatch)}


def test_a_fleet_run_through_every_fault_loses_nothing_and_alerts_each_fault_once(
    tmp_path: Path,
) -> None:
    with engine_stack(tmp_path) as stack:
        fleet = Fleet.create(FleetSpec(devices=30, seed=21, start=START))
        faulty = inject(fleet)
        stack.register(fleet)
        stack.start_serve(ingest_workers=2, evaluators=1)

        stop, stats = threading.Event(), RunStats()
        options = RunOptions(
            speed=SPEED,
            report_interval_s=900,
            client_id="drill-fleet",
            chaos=Chaos(duplicate=0.03, out_of_order=0.03, malformed=0.01),
        )
        runner = threading.Thread(
            target=run, args=(fleet, stack.settings().mqtt, options, stop, stats), daemon=True
        )
        runner.start()
        started = time.monotonic()

        def at(second: float) -> None:
            time.sleep(max(0.0, second - (time.monotonic() - started)))

        # a simulated day every 6 s, twelve in the run: the slowest fault, a worn fan
        # bearing, slows the fan below its rule's line for whole runs only from about ten
        # days after onset (before that, for an hour as a run starts, which a pass can miss)
        at(8)
        stack.kill_9("ingest-0")
        at(15)
        stack.influxd.stop()
        time.sleep(20)
        stack.influxd.start()
        at(42)
        stack.broker.restart()
        at(49)
        stack.postgres.stop()
        time.sleep(5)
        stack.postgres.start()
        at(60)
        flood_good, flood_bad = _flood(stack, int(fleet.t * 1000))
        at(76)
        stop.set()
        runner.join(60)
        assert not runner.is_alive()

        # the ground truth: what the broker acknowledged to the simulated devices
        expected = fleet.truth.published + flood_good
        assert stats.duplicates > 100 and sum(stats.malformed.values()) > 50

        def short() -> str:
            # a gap is a lost message or a malformed one (it used a seq too)
            return f"stored {stack.stored()} of {expected}; gaps: {stack.gaps(fleet)}"

        wait(f"{expected} readings stored", lambda: stack.stored() >= expected, 120, short)
        time.sleep(3)  # anything more would be a duplicate: give it time to show
        # the store keeps one reading per (device, boot, seq): the count is exact
        assert stack.stored() == expected

        # every malformed message is a dead letter with its reason; a message redelivered
        # after the kill may count twice (at least once), never be missing
        want_letters = dict(stats.malformed)
        for reason, n in flood_bad.items():
            want_letters[reason] = want_letters.get(reason, 0) + n

        def letters_in() -> bool:
            return dict(stack.outcome().letters_by_reason) == want_letters

        wait(
            "every malformed message dead-lettered",
            letters_in,
            60,
            lambda: f"want {want_letters}, have {dict(stack.outcome().letters_by_reason)}",
        )
        out = stack.outcome()
        for reason, n in want_letters.items():
            assert out.letter_counts[reason] >= n

        # every injected fault: its alert, once, and one job
        def all_alerted() -> bool:
            alerts = stack.outcome().alerts
            return all(alerts[(d, PROBLEM_OF[f])] for d, f in faulty.items())

        wait(
            "an alert for every injected fault",
            all_alerted,
            120,
            lambda: (
                f"faults {faulty}; alerts {dict(stack.outcome().alerts)}; the fleet ran "
                f"{(stats.sim_time - START) / DAY:.1f} simulated days\n{stack.trouble()}"
            ),
        )
        time.sleep(3)  # more passes: nothing may fire twice
        out = stack.outcome()
        for device, fault in faulty.items():
            assert out.alerts[(device, PROBLEM_OF[fault])] == 1, (fault, device)
            assert out.orders[(device, PROBLEM_OF[fault])] == 1, (fault, device)
        assert max(out.alert_rules.values()) == 1, "one alert per rule and device"
        assert max(out.orders.values()) == 1, "no duplicate job"
        false = {
            (d, p) for d, p in out.alerts if p not in ROUTINE and (d, p) not in
            {(dev, PROBLEM_OF[f]) for dev, f in faulty.items()}
        }  # fmt: skip
        assert false == set()
        # the outages cost failed passes and held acknowledgements, never a part: only the
        # worker the drill killed was restarted
        assert stack.deaths() == ["ingest-0"], stack.trouble()
        stack.stop_serve()
