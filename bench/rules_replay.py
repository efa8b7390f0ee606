"""Rules against the simulator's ground truth: a simulated fleet, aged in process, its
telemetry written straight to a store (no broker: this measures the rules, not the
pipe), the evaluator run every simulated interval, and every alert compared with what
really happened to the device.

* **Detections**: each injected fault of a kind a built-in rule covers should raise the
  alert for its problem (and one job).
* **False alerts**: an alert for a fault the device does not have, or a filter alert
  while the device's own filter reading says otherwise, counted per 1,000 device-days.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from db.database import Database
from device_sim.fleet import Fleet
from fleet.state import DeviceStateRepository, StateUpdate
from fleetcare.registry_gen import generate
from rules.alerts import Alert, AlertStore
from rules.catalog import Catalog
from rules.evaluator import Evaluator
from rules.outputs import ModelOutputs
from rules.stream import StreamChecks
from service.registry import ServiceRegistry, parse_doc
from telemetry.records import Event, Reading
from telemetry.store import TelemetryStore

# the problem each simulated fault should be reported as
PROBLEM_OF = {
    "motor_wear": "motor_wear",
    "pm_sensor_stuck": "sensor_fault",
    "pm_sensor_drift": "sensor_fault",
    "ro_membrane_failure": "ro_membrane_failure",
    "pump_failure": "pump_failure",
    "leak": "leak",
    "refrigerant_leak": "refrigerant_leak",
    "condenser_fouling": "condenser_fouling",
    "fan_bearing_wear": "fan_bearing_wear",
    "clogged_prefilter": "clogged_prefilter",
    "compressor_degradation": "compressor_degradation",
    "sensor_spikes": "sensor_fault",
    "sensor_dropout": "sensor_fault",
}
# problems that are about consumables or connectivity, judged separately from faults
ROUTINE = ("filter_replacement", "connectivity")


@dataclass
class Detection:
    device_id: str
    fault: str
    onset: float
    alert_at: float | None = None  # first alert for its problem
    rule: str | None = None


@dataclass
class ReplayResult:
    devices: int
    days: float
    passes: int
    readings: int
    seconds: float
    alerts: list[Alert] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    false_alerts: list[Alert] = field(default_factory=list)

    @property
    def device_days(self) -> float:
        return self.devices * self.days

    @property
    def false_per_1000_device_days(self) -> float:
        return 1000 * len(self.false_alerts) / self.device_days if self.device_days else 0.0


def stored_readings(fleet: Fleet, t: float) -> list[Reading]:
    """One reading round of the fleet at `t` as the store keeps it: a null (a dropped-out
    sensor) is no value, as ingest reads it."""
    ts = int(t * 1000)
    return [
        Reading(
            device_type, device_id, boot, seq, ts, {k: v for k, v in m.items() if v is not None}
        )
        for _, device_type, device_id, m, boot, seq in fleet.readings()
    ]


async def replay(
    fleet: Fleet,
    *,
    db: Database,
    store: TelemetryStore,
    catalog: Catalog,
    days: float,
    report_every_s: float = 600.0,
    evaluate_every_s: float = 3600.0,
    outputs: ModelOutputs | None = None,
    progress: Callable[[float], None] | None = None,
) -> ReplayResult:
    """Age `fleet` for `days`, storing its telemetry and events and evaluating the rules
    on the simulated clock; then judge every alert against the ground truth."""
    started = time.perf_counter()
    ServiceRegistry(db).load(parse_doc(generate(fleet)))
    states = DeviceStateRepository(db)
    evaluator = Evaluator(db=db, store=store, catalog=catalog, outputs=outputs, device_time=True)
    stream = StreamChecks(db, catalog)
    start, end = fleet.t, fleet.t + days * 86400
    next_eval = start + evaluate_every_s
    passes = readings = 0
    t = start
    while t < end:
        t = min(t + report_every_s, end)
        fleet.advance(t)
        ts = int(t * 1000)
        batch = stored_readings(fleet, t)
        events = [
            Event(device_type, device_id, boot, seq, ts, "error_code", data)
            for _, device_type, device_id, data, boot, seq in fleet.events()
        ]
        await store.write(batch, events)
        readings += len(batch)
        now = datetime.fromtimestamp(t, UTC)
        states.apply([StateUpdate.of_reading(r, now) for r in batch])
        await stream.on_batch(batch, events)
        if t >= next_eval or t >= end:
            await evaluator.run_pass(now)
            passes += 1
            next_eval += evaluate_every_s
        if progress is not None:
            progress((t - start) / (end - start))
    result = ReplayResult(
        devices=len(fleet.ids),
        days=days,
        passes=passes,
        readings=readings,
        seconds=time.perf_counter() - started,
        alerts=AlertStore(db).find(limit=1_000_000),
    )
    judge(fleet, result)
    return result


def judge(fleet: Fleet, result: ReplayResult) -> None:
    """Fill detections and false alerts from the ground truth."""
    by_device: dict[str, list[Alert]] = {}
    for a in result.alerts:
        by_device.setdefault(a.device_id, []).append(a)
    for device_id, truth in fleet.truth.devices.items():
        for f in truth.faults:
            d = Detection(device_id, f.kind, f.onset)
            hits = [
                a
                for a in by_device.get(device_id, [])
                if a.problem_kind == PROBLEM_OF.get(f.kind) and a.fired_at.timestamp() >= f.onset
            ]
            if hits:
                first = min(hits, key=lambda a: a.fired_at)
                d.alert_at, d.rule = first.fired_at.timestamp(), first.rule_id
            result.detections.append(d)
    for a in result.alerts:
        if a.problem_kind in ROUTINE:
            continue  # the device's own filter and link reports: not a diagnosis
        faults = fleet.truth.devices[a.device_id].faults
        if not any(PROBLEM_OF.get(f.kind) == a.problem_kind for f in faults):
            result.false_alerts.append(a)
