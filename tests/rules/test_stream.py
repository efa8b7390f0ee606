"""Per-message rules fire at ingest, from a real broker, as soon as the batch holding the
message is stored: no evaluator pass needed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from fleetcare.brokers import MosquittoProcess
from fleetcare.wiring import open_database
from rules.alerts import AlertStore
from service.lifecycle import State
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from tests.ingest.helpers import now_ms, publish, settings_for, telemetry, topic, wait_until
from tests.ingest.test_ingest_e2e import running_worker
from tests.world import WORLD


async def test_a_leak_and_a_fault_code_fire_at_ingest_and_open_their_jobs(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = settings_for(tmp_path, mosquitto.port)
    db = open_database(settings)
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    alerts = AlertStore(db)
    async with running_worker(settings):
        started = time.monotonic()
        leak = telemetry("wp-1", 1, device_type="water_purifier", leak=True, tds_out_ppm=9.0)
        e6 = (
            topic("air_conditioner", "ac-1", "event"),
            orjson.dumps(
                {"v": 1, "device_id": "ac-1", "ts": now_ms(), "seq": 1, "boot": 1,
                 "event": "error_code", "data": {"code": "E6", "text": "low refrigerant"}}
            ),
        )  # fmt: skip
        healthy = telemetry("ap-1", 1, pm25=8.0, filter_life_pct=80.0)
        await asyncio.to_thread(publish, mosquitto.port, [leak, e6, healthy])

        async def two_alerts() -> bool:
            return len(await asyncio.to_thread(alerts.find, state="firing")) == 2

        await wait_until(two_alerts, 10, "the leak and E6 alerts")
        latency = time.monotonic() - started
    fired = {a.rule_id: a for a in alerts.find(state="firing")}
    assert set(fired) == {"water_leak", "ac_refrigerant_leak"}
    assert fired["ac_refrigerant_leak"].evidence["code"] == "E6"
    orders = WorkOrders(db)
    for alert in fired.values():
        order = orders.get(alert.work_order_id or 0)
        assert order.state is State.OPEN  # both rules open jobs straight to dispatch
    assert latency < 10
    db.dispose()


async def test_a_message_older_than_its_rules_last_resolution_opens_nothing(
    tmp_path: Path,
) -> None:
    """A leak reading delivered again after its alert was resolved (a crash's redelivery,
    or a device's resend after a broker restart) belongs to the closed episode; a newer
    one is a new leak."""
    from datetime import UTC, datetime

    from db.database import Database
    from rules.catalog import load_catalog
    from rules.evaluator import row_of
    from rules.machine import RuleState
    from rules.stream import StreamChecks
    from telemetry.records import Reading

    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    checks, alerts = StreamChecks(db, load_catalog()), AlertStore(db)
    t0 = 1_780_000_000_000

    def leak(seq: int, ts: int, wet: bool = True) -> Reading:
        return Reading("water_purifier", "wp-1", 1, seq, ts, {"leak": wet, "tds_out_ppm": 9.0})

    await checks.on_batch([leak(1, t0)], [])
    assert [a.rule_id for a in alerts.find(state="firing")] == ["water_leak"]
    await checks.on_batch([leak(2, t0 + 1_800_000, wet=False)], [])  # dry: it was mended
    # the evaluator resolves it an hour later, and saves the rule's state as inactive
    resolved_at = datetime.fromtimestamp(t0 / 1000 + 3600, UTC)
    alerts.resolve("water_leak", "wp-1", resolved_at, {})
    alerts.save_states([row_of(RuleState("water_leak", "wp-1", evaluated_at=resolved_at))])
    await checks.on_batch([leak(1, t0)], [])  # the same message again
    assert alerts.find(state="firing") == []
    await checks.on_batch([leak(3, t0 + 7_200_000)], [])  # a leak after the resolution
    assert len(alerts.find(state="firing")) == 1 and len(alerts.find()) == 2
    db.dispose()


async def test_the_evaluator_leaves_an_ingest_alert_until_the_device_state_has_its_message(
    tmp_path: Path,
) -> None:
    """Two ingest workers: one fires the leak at ingest, the other has already written
    newer states of other devices, so the devices' clock is past the leak. Until the leak
    reading is in wp-1's own state, the evaluator must not judge wp-1 by its older values
    (that resolved the leak, and the next reading fired it again: a second alert). Once a
    newer dry reading is in the state, it resolves as usual."""
    from datetime import UTC, datetime

    from db.database import Database
    from fleet.state import DeviceStateRepository, StateUpdate
    from rules.catalog import load_catalog
    from rules.evaluator import Evaluator
    from rules.stream import StreamChecks
    from telemetry.backends import StoreSettings, create_store
    from telemetry.records import Reading

    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    await store.open()
    catalog = load_catalog()
    checks, alerts, states = StreamChecks(db, catalog), AlertStore(db), DeviceStateRepository(db)
    evaluator = Evaluator(db=db, store=store, catalog=catalog, device_time=True)
    t0 = 1_780_000_000_000
    received = datetime.now(UTC)

    def wp1(seq: int, ts: int, leak: bool) -> Reading:
        return Reading("water_purifier", "wp-1", 1, seq, ts, {"leak": leak, "tds_out_ppm": 9.0})

    dry, wet = wp1(1, t0, False), wp1(2, t0 + 60_000, True)
    other = Reading("purifier", "ap-1", 1, 1, t0 + 120_000, {"pm25": 8.0})
    states.apply([StateUpdate.of_reading(r, received) for r in (dry, other)])
    await checks.on_batch([wet], [])  # worker A: fired; its states not written yet
    assert [a.rule_id for a in alerts.find(state="firing")] == ["water_leak"]
    await evaluator.run_pass()  # the clock is ap-1's, past the leak; wp-1's state is dry
    assert [a.rule_id for a in alerts.find(state="firing")] == ["water_leak"]
    states.apply([StateUpdate.of_reading(wet, received)])  # worker A writes its states
    await evaluator.run_pass()
    assert [a.rule_id for a in alerts.find(state="firing")] == ["water_leak"]
    states.apply([StateUpdate.of_reading(wp1(3, t0 + 180_000, False), received)])
    await evaluator.run_pass()  # dry again, and newer: resolved
    assert alerts.find(state="firing") == [] and len(alerts.find()) == 1
    await store.close()
    db.dispose()


async def test_ingest_reads_only_the_states_of_the_rules_that_hit(tmp_path: Path) -> None:
    """A device's saved state holds a row for every rule of its type: the per-message
    check reads those of the rules a message hit, and what they say is all it decides by
    (a leak already firing fires nothing more; a new one fires)."""
    from datetime import UTC, datetime

    from db.database import Database
    from rules.catalog import load_catalog
    from rules.evaluator import row_of
    from rules.machine import Phase, RuleState
    from rules.stream import StreamChecks
    from telemetry.records import Reading

    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    catalog, alerts = load_catalog(), AlertStore(db)
    now = datetime.now(UTC)
    kinds = [r.id for r in catalog.enabled() if r.device_type == "water_purifier"]
    alerts.save_states([row_of(RuleState(k, "wp-1", evaluated_at=now)) for k in kinds])
    assert len(kinds) > 4 and len(alerts.load_states({"wp-1"})) == len(kinds)
    assert set(alerts.load_states({"wp-1"}, {"water_leak"})) == {("water_leak", "wp-1")}
    # the leak's state says firing (no alert row): ingest takes it at its word
    firing = RuleState("water_leak", "wp-1", active=True, phase=Phase.FIRING, since=now)
    alerts.save_states([row_of(firing)])
    t0 = int(now.timestamp() * 1000)
    leak = Reading("water_purifier", "wp-1", 1, 1, t0, {"leak": True, "tds_out_ppm": 9.0})
    checks = StreamChecks(db, catalog, firing_memory_s=0)  # the store's word, every time
    await checks.on_batch([leak], [])
    assert alerts.find(state="firing") == []
    alerts.save_states([row_of(RuleState("water_leak", "wp-1", evaluated_at=now))])
    await checks.on_batch([Reading("water_purifier", "wp-1", 1, 2, t0 + 1, leak.metrics)], [])
    assert [a.rule_id for a in alerts.find(state="firing")] == ["water_leak"]
    db.dispose()


async def test_ingest_remembers_a_firing_alert_until_a_message_does_not_hit(
    tmp_path: Path,
) -> None:
    """A fault left firing hits on every message. Ingest reads its state from the store
    once, then remembers it is firing: until one of the device's messages does not hit
    (the store is read again at the next that does), or for `firing_memory_s`, since
    another worker may have seen the message that cleared it. What was missed meanwhile
    is the evaluator's, at its next pass."""
    from datetime import UTC, datetime

    from db.database import Database
    from rules.catalog import load_catalog
    from rules.evaluator import row_of
    from rules.machine import RuleState
    from rules.stream import StreamChecks
    from telemetry.records import Reading

    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    clock = [1000.0]
    checks = StreamChecks(db, load_catalog(), firing_memory_s=60, clock=lambda: clock[0])
    alerts = AlertStore(db)
    reads: list[set[str]] = []
    load_states = checks.alerts.load_states

    def counted(device_ids, rule_ids=None):  # type: ignore[no-untyped-def]
        reads.append(set(device_ids))
        return load_states(device_ids, rule_ids)

    checks.alerts.load_states = counted  # type: ignore[method-assign]
    t0 = 1_780_000_000_000
    seq = iter(range(1, 1000))

    def wp1(wet: bool, at_s: float) -> Reading:
        metrics = {"leak": wet, "tds_out_ppm": 9.0}
        return Reading("water_purifier", "wp-1", 1, next(seq), t0 + int(at_s * 1000), metrics)

    def resolve_by_the_evaluator(at_s: float) -> None:
        at = datetime.fromtimestamp(t0 / 1000 + at_s, UTC)
        alerts.resolve("water_leak", "wp-1", at, {})
        alerts.save_states([row_of(RuleState("water_leak", "wp-1", evaluated_at=at))])

    await checks.on_batch([wp1(True, 0)], [])
    assert len(alerts.find(state="firing")) == 1 and len(reads) == 1
    for i in range(1, 6):  # still leaking: remembered, the store is not read
        await checks.on_batch([wp1(True, i), wp1(True, i + 0.5)], [])
    assert len(reads) == 1 and len(alerts.find()) == 1

    # a dry message: forgotten. The evaluator resolves it; the next leak is a new one
    await checks.on_batch([wp1(False, 10)], [])
    resolve_by_the_evaluator(11)
    await checks.on_batch([wp1(True, 20)], [])
    assert len(reads) == 2 and len(alerts.find(state="firing")) == 1 and len(alerts.find()) == 2

    # wet then dry in one batch: the store, read for the wet one, says firing, but the
    # latest message did not hit, so nothing is remembered
    await checks.on_batch([wp1(False, 30)], [])
    await checks.on_batch([wp1(True, 31), wp1(False, 32)], [])
    assert len(reads) == 3
    await checks.on_batch([wp1(True, 40)], [])
    await checks.on_batch([wp1(True, 41)], [])
    assert len(reads) == 4 and len(alerts.find()) == 2

    # another worker saw the dry message and the evaluator resolved: this worker still
    # believes it firing, for firing_memory_s at most, and then reads the store again
    resolve_by_the_evaluator(50)
    clock[0] += 59
    await checks.on_batch([wp1(True, 60)], [])
    assert len(reads) == 4 and len(alerts.find(state="firing")) == 0
    clock[0] += 2
    await checks.on_batch([wp1(True, 61)], [])
    assert len(reads) == 5 and len(alerts.find(state="firing")) == 1 and len(alerts.find()) == 3
    db.dispose()
