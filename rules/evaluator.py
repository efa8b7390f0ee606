"""The periodic evaluator: every rule on every device of this replica's partition, once
per pass, the way Prometheus evaluates alerting rules.

A pass reads in bulk (a few store queries per device type, not one per device): the
device states (last values, online, last heard), window aggregates, recent events and
model outputs. It evaluates each rule's condition, steps its state machine, acts (fire
or resolve the alert, open or join the work order), and then saves the states. Acting
before saving makes a crash safe: a repeated fire finds the alert already firing (the
database's unique index), a repeated resolve finds nothing to resolve.

Devices are split over replicas by a stable hash of their id (`partition=(k, n)`), so
`n` evaluators share a fleet without talking to each other; if two ever overlap, the
alert and work-order uniqueness in the database still makes one of each.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from db.database import Database
from fleet.state import DeviceState, DeviceStateRepository
from rules.actions import AlertActions, Tally
from rules.alerts import AlertStore
from rules.catalog import Catalog
from rules.conditions import (
    DeviceView,
    EventSeen,
    Verdict,
    WindowKey,
    event_window,
    judge,
    rule_windows,
)
from rules.machine import Action, Phase, RuleState, step
from rules.outputs import ModelOutputs
from rules.spec import Rule
from service.diy import Diy
from telemetry.store import TelemetryStore

log = logging.getLogger("fleetcare.rules")


def in_partition(device_id: str, partition: tuple[int, int]) -> bool:
    k, n = partition
    return n == 1 or zlib.crc32(device_id.encode()) % n == k


@dataclass
class PassReport(Tally):
    devices: int = 0
    evaluations: int = 0
    pending: int = 0
    resolved: int = 0
    withdrawn: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Decision:
    rule: Rule
    device: DeviceState
    before: RuleState
    after: RuleState
    verdict: Verdict
    action: Action


class Evaluator:
    def __init__(
        self,
        *,
        db: Database,
        store: TelemetryStore,
        catalog: Catalog,
        outputs: ModelOutputs | None = None,
        partition: tuple[int, int] = (0, 1),
        device_time: bool = False,
        actor: str = "rules",
    ) -> None:
        """`device_time`: judge silence by the devices' own clock (replays and accelerated
        simulations) instead of when we received their messages."""
        k, n = partition
        if not 0 <= k < n:
            raise ValueError(f"partition {k}/{n}: the index must be 0 to {n - 1}")
        self.db, self.store, self.catalog, self.outputs = db, store, catalog, outputs
        self.partition, self.device_time, self.actor = partition, device_time, actor
        self.alerts = AlertStore(db)
        self.actions = AlertActions(db, actor=actor)
        self.states = DeviceStateRepository(db)

    async def run_pass(self, now: datetime | None = None) -> PassReport:
        started = time.perf_counter()
        report = PassReport()
        devices = await asyncio.to_thread(self._devices)
        now = now or (self._device_clock(devices) if self.device_time else datetime.now(UTC))
        report.devices = len(devices)
        ids = [d.device_id for d in devices]
        saved = await asyncio.to_thread(self.alerts.load_states, ids)
        firing = await asyncio.to_thread(self.alerts.firing_for, ids)
        orphans = await asyncio.to_thread(self.alerts.firing_without_job, ids)
        outputs = await asyncio.to_thread(self.outputs.values, ids, now) if self.outputs else {}
        by_type: dict[str, list[DeviceState]] = defaultdict(list)
        for d in devices:
            by_type[d.device_type].append(d)
        decisions: list[_Decision] = []
        for device_type, group in by_type.items():
            rules = self.catalog.enabled(device_type)
            if rules:
                views = await self._views(device_type, group, rules, outputs, now)
                decisions += self._decide(rules, group, views, saved, firing, now)
        report.evaluations = len(decisions)
        for decision in decisions:
            await self._act(decision, now, report)
        for alert in orphans:  # their silence ended, or their device joined the registry
            rule = self.catalog.rules.get(alert.rule_id)
            if rule is not None and rule.enabled:
                await asyncio.to_thread(self.actions.follow_up, alert, rule, now, report)
        changed = [row_of(d.after) for d in decisions if _key(d.after) != _key(d.before)]
        await asyncio.to_thread(self.alerts.save_states, changed)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _device_clock(devices: Sequence[DeviceState]) -> datetime:
        """An accelerated fleet's "now": the newest reading its devices sent, so windows
        and durations run on the simulated clock (wall time until anything is stored)."""
        newest = max((d.latest_ts for d in devices if d.latest_ts is not None), default=None)
        return _ms(newest) or datetime.now(UTC)

    def _devices(self) -> list[DeviceState]:
        return [s for s in self.states.every() if in_partition(s.device_id, self.partition)]

    async def _views(
        self,
        device_type: str,
        group: Sequence[DeviceState],
        rules: Sequence[Rule],
        outputs: dict[str, dict[tuple[str, str], float]],
        now: datetime,
    ) -> dict[str, DeviceView]:
        views = {
            d.device_id: DeviceView(
                device_id=d.device_id,
                device_type=device_type,
                now=now,
                latest=d.latest_metrics,
                last_received_at=_ms(d.latest_ts) if self.device_time else d.last_received_at,
                online=d.online,
                online_changed_at=d.online_changed_at,
                outputs=outputs.get(d.device_id, {}),
            )
            for d in group
        }
        spans: dict[tuple[timedelta, timedelta, tuple[tuple[str, str, float], ...]], set[str]] = (
            defaultdict(set)
        )
        for rule in rules:
            for key in rule_windows(rule):
                spans[(key.start_ago, key.end_ago, key.where)].add(key.metric)
        for (start_ago, end_ago, where), metrics in spans.items():
            aggs = await self.store.aggregate(
                device_type,
                _epoch(now - start_ago),
                _epoch(now - end_ago),
                sorted(metrics),
                device_ids=list(views),
                where=where,
            )
            for device_id, per_metric in aggs.items():
                view = views.get(device_id)
                if view is not None:
                    for metric, agg in per_metric.items():
                        view.windows[WindowKey(metric, start_ago, end_ago, where)] = agg
        longest = max(
            (
                w
                for r in rules
                for c in (r.when, r.requires)
                if c is not None and (w := event_window(c)) is not None
            ),
            default=None,
        )
        if longest is not None:
            seen: dict[str, list[EventSeen]] = defaultdict(list)
            for e in await self.store.recent_events(
                device_type, _epoch(now - longest), _epoch(now) + 1
            ):
                code = e.data.get("code")
                seen[e.device_id].append(
                    EventSeen(_ms(e.ts) or now, e.name, str(code) if code is not None else None)
                )
            for device_id, events in seen.items():
                if device_id in views:
                    views[device_id].events = events
        return views

    def _decide(
        self,
        rules: Sequence[Rule],
        group: Sequence[DeviceState],
        views: dict[str, DeviceView],
        saved: dict[tuple[str, str], dict[str, Any]],
        firing: dict[tuple[str, str], datetime],
        now: datetime,
    ) -> list[_Decision]:
        out = []
        sensor = {rule.id: rule.sensor for rule in rules}  # walks the condition: once
        for device in group:
            view = views[device.device_id]
            for rule in rules:
                key = (rule.id, device.device_id)
                if key in firing and firing[key] > now:
                    # fired at ingest by a message newer than this pass's clock (the
                    # devices' clock, read before that message's state was written): this
                    # pass cannot judge it, and resolving it would only fire it again
                    continue
                if key in firing and rule.per_message and _behind(device, firing[key]):
                    # the same for this device alone: another ingest worker's states moved
                    # the clock on, but the message that fired this alert is not in the
                    # device's state yet (its worker writes states every state_flush_s),
                    # so the state's older values would resolve it, and the next message
                    # fire it again. A per-message rule judges the latest values only:
                    # until newer ones arrive there is nothing new to judge.
                    continue
                before = state_of(saved.get(key), rule.id, device.device_id)
                if key in firing and before.phase is not Phase.FIRING:
                    # fired elsewhere (at ingest): this evaluator owns its resolving
                    before = replace(before, phase=Phase.FIRING, active=True, since=firing[key])
                if sensor[rule.id] and not device.online:
                    # offline inhibits sensor rules: old values neither fire nor resolve
                    verdict = Verdict(None, evidence={"inhibited": "device offline"})
                else:
                    verdict = judge(rule, view, before.active)
                after, action = step(before, verdict.active, rule, now, verdict.value)
                out.append(_Decision(rule, device, before, after, verdict, action))
        return out

    async def _act(self, d: _Decision, now: datetime, report: PassReport) -> None:
        if d.action is Action.PENDING:
            report.pending += 1
        elif d.action is Action.WITHDRAWN:
            report.withdrawn += 1
        elif d.action is Action.FIRE:
            await asyncio.to_thread(self._fire, d, now, report)
        elif d.action is Action.RESOLVE:
            resolved = await asyncio.to_thread(
                self.alerts.resolve, d.rule.id, d.device.device_id, now, d.verdict.evidence
            )
            report.resolved += resolved is not None
            if resolved is not None and resolved.work_order_id is not None:
                # the device itself says the problem is gone: a shipped diy filter is in
                await asyncio.to_thread(
                    Diy(self.db).on_device_report,
                    resolved.work_order_id,
                    now=self.actions.job_clock(),
                )

    def _fire(self, d: _Decision, now: datetime, report: PassReport) -> None:
        pending_since = d.before.since if d.before.phase is Phase.PENDING else None
        self.actions.fire(
            d.rule, d.device.device_id, d.device.device_type, d.verdict, now, report,
            pending_since=pending_since,
        )  # fmt: skip


def _epoch(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _behind(device: DeviceState, fired_at: datetime) -> bool:
    """The device's state is older than the message that fired an alert."""
    seen = _ms(device.latest_ts)
    return seen is None or seen < fired_at


def _ms(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts / 1000, UTC) if ts is not None else None


def state_of(row: dict[str, Any] | None, rule_id: str, device_id: str) -> RuleState:
    if row is None:
        return RuleState(rule_id, device_id)
    return RuleState(
        rule_id=rule_id,
        device_id=device_id,
        active=row["active"],
        phase=Phase(row["phase"]),
        since=row["since"],
        changes=tuple(datetime.fromisoformat(t) for t in row["changes"]),
        flapping=row["flapping"],
        clear_since=row["clear_since"],
        cooldown_until=row["cooldown_until"],
        value=row["value"],
        evaluated_at=row["evaluated_at"],
    )


def row_of(s: RuleState) -> dict[str, Any]:
    return {
        "rule_id": s.rule_id,
        "device_id": s.device_id,
        "active": s.active,
        "phase": s.phase.value,
        "since": s.since,
        "changes": [t.isoformat() for t in s.changes],
        "flapping": s.flapping,
        "clear_since": s.clear_since,
        "cooldown_until": s.cooldown_until,
        "value": s.value,
        "evaluated_at": s.evaluated_at,
    }


def _key(s: RuleState) -> tuple[Any, ...]:
    """What is worth a write: everything but when it was last evaluated."""
    return (
        s.active,
        s.phase,
        s.since,
        s.changes,
        s.flapping,
        s.clear_since,
        s.cooldown_until,
        s.value,
    )
