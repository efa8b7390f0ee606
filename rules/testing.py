"""Rule unit tests (`fleetcare rules test FILE`), in the spirit of `promtool test rules`:
a device's samples in, the alerts that should be firing out.

```yaml
rule_files: [team.yaml]            # relative to this file; the built-ins are always in
tests:
  - name: a weak pump fires after an hour
    device: {id: wp-1, type: water_purifier}
    interval: 10m                  # between samples
    series:                        # one value per interval; null = no value
      pressure_kpa: [600, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350, 350]
    events:                        # optional: [sample index, event name, code]
      - [3, error_code, E6]
    expect:
      firing: [water_pump_failure]   # exactly these (of the rules for this device type)
```
Each test runs alone: an embedded store and a SQLite database in a temporary
directory, the evaluator after every sample, on the samples' clock.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from db.database import Database
from fleet.state import DeviceStateRepository, StateUpdate
from rules.alerts import AlertStore
from rules.catalog import Catalog, load_catalog
from rules.evaluator import Evaluator
from rules.spec import Duration
from telemetry.backends import StoreSettings, create_store
from telemetry.records import Event, Reading

T0 = datetime(2026, 1, 5, tzinfo=UTC)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceRef(_M):
    id: str
    type: str


class Expect(_M):
    firing: list[str] = Field(default_factory=list)


class Case(_M):
    name: str
    device: DeviceRef
    interval: Duration = timedelta(minutes=1)
    series: dict[str, list[Any]]
    events: list[tuple[int, str, str | None]] = Field(default_factory=list)
    expect: Expect


class RuleTests(_M):
    rule_files: list[str] = Field(default_factory=list)
    tests: list[Case]


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    passed: bool
    detail: str


class RuleTestError(Exception):
    pass


def read_tests(path: Path) -> tuple[RuleTests, Catalog]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = RuleTests.model_validate(doc)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise RuleTestError(f"{path}: {e}") from e
    catalog = load_catalog([path.parent / f for f in spec.rule_files])
    if catalog.errors:
        raise RuleTestError("\n".join(str(e) for e in catalog.errors))
    return spec, catalog


async def run_case(case: Case, catalog: Catalog) -> Outcome:
    lengths = {len(v) for v in case.series.values()}
    if len(lengths) > 1:
        return Outcome(case.name, False, "every series needs the same number of samples")
    n = lengths.pop() if lengths else 0
    with tempfile.TemporaryDirectory(prefix="fleetcare-rules-test-") as tmp:
        db = Database(f"sqlite:///{tmp}/fc.sqlite3")
        db.upgrade()
        states = DeviceStateRepository(db)
        async with create_store(StoreSettings(backend="embedded"), tmp) as store:
            evaluator = Evaluator(db=db, store=store, catalog=catalog, device_time=True)
            for i in range(n):
                at = T0 + i * case.interval
                ts = int(at.timestamp() * 1000)
                metrics = {k: v[i] for k, v in case.series.items() if v[i] is not None}
                events = [
                    Event(case.device.type, case.device.id, 1, 100_000 + j, ts, name,
                          {"code": code} if code else {})
                    for j, (k, name, code) in enumerate(case.events)
                    if k == i
                ]  # fmt: skip
                reading = Reading(case.device.type, case.device.id, 1, i + 1, ts, metrics)
                await store.write([reading], events)
                states.apply([StateUpdate.of_reading(reading, at)])
                await evaluator.run_pass(at)
            firing = sorted(
                a.rule_id for a in AlertStore(db).find(state="firing", device_id=case.device.id)
            )
        db.dispose()
    want = sorted(case.expect.firing)
    if firing == want:
        return Outcome(case.name, True, f"firing: {', '.join(firing) or 'nothing'}")
    return Outcome(
        case.name,
        False,
        f"expected firing {want or 'nothing'}, got {firing or 'nothing'}",
    )
