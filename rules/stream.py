"""Per-message checks at ingest: rules that can fire from one message (a fault code, a
last-value threshold, no `for`) fire as soon as the batch holding it is stored, without
waiting for the evaluator's next pass.

Ingest only raises. Clearing, and everything over a window, stays with the evaluator,
which also re-checks these rules each pass: a message that arrives while this check
cannot reach the database is still judged, one interval later. Nothing is missed, and
the database's uniqueness keeps ingest and the evaluator from firing one alert twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from db.database import Database
from rules.actions import AlertActions, Tally
from rules.alerts import AlertStore
from rules.catalog import Catalog
from rules.conditions import DeviceView, EventSeen, evaluate, raises
from rules.evaluator import row_of, state_of
from rules.machine import Action, Phase, step
from rules.spec import Rule, Threshold
from telemetry.profile import ProfileSet
from telemetry.records import Event, Reading

log = logging.getLogger("fleetcare.rules")


class StreamChecks:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        *,
        actor: str = "rules:ingest",
        firing_memory_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        catalog_for: Callable[[ProfileSet], Catalog] | None = None,
    ) -> None:
        """`catalog_for`: the catalog for another set of product profiles (a new version
        brings its rules); without it, the catalog stays as given."""
        self.alerts = AlertStore(db)
        self.actions = AlertActions(db, actor=actor)
        # (rule, device) -> when the store last said it is firing (clock seconds). A
        # device with a fault left firing hits on every message, and reading its state
        # for each made a batch cost more with every such device (a fleet aging with no
        # repairs: 12 -> 47 ms per 1,000 readings). The memory is forgotten at the first
        # message that does not hit, and trusted for `firing_memory_s` only: another
        # worker may have seen the message that cleared it, and until this one reads
        # the store again a new episode is the evaluator's to fire (its next pass).
        self.firing_memory_s = firing_memory_s
        self.clock = clock
        self.known_firing: dict[tuple[str, str], float] = {}
        self._pruned_at = clock()
        self.catalog_for = catalog_for
        self._index(catalog)

    def _index(self, catalog: Catalog) -> None:
        """Per device type: the rules a reading can fire, and those an event can."""
        on_reading: dict[str, list[Rule]] = defaultdict(list)
        on_event: dict[str, list[Rule]] = defaultdict(list)
        # a reading's rules with their threshold: whether it raises is all the judgement
        # needs, and the healthy majority ends there, with no view or verdict built for it
        bounds: dict[str, list[tuple[Rule, Threshold]]] = defaultdict(list)
        for rule in catalog.enabled():
            if rule.per_message:
                by_type = on_event if rule.when.kind == "event" else on_reading
                by_type[rule.device_type].append(rule)
                if rule.when.threshold is not None:
                    bounds[rule.device_type].append((rule, rule.when.threshold))
        self.on_reading, self.on_event, self._bounds = on_reading, on_event, bounds

    async def use_profiles(self, profiles: ProfileSet) -> None:
        if self.catalog_for is not None:
            self._index(await asyncio.to_thread(self.catalog_for, profiles))

    async def on_batch(self, readings: Sequence[Reading], events: Sequence[Event]) -> None:
        if not self.on_reading and not self.on_event:
            return
        try:
            tally = await asyncio.to_thread(self._check, readings, events)
        except Exception:  # the evaluator judges these messages again: never stall ingest
            log.exception("per-message rules failed; the evaluator will judge these messages")
            return
        if tally.fired:
            log.info("alerts fired at ingest", extra={"kv": {"fired": tally.fired}})

    def _check(self, readings: Sequence[Reading], events: Sequence[Event]) -> Tally:
        tally = Tally()
        # judged without state first: past the raise bound is true whatever came before,
        # so the healthy majority costs no database read
        now = self.clock()
        self._prune(now)
        known, fresh_after = self.known_firing, now - self.firing_memory_s
        hits = []
        cleared: set[tuple[str, str]] = set()  # whose latest message here did not hit
        bounds = self._bounds
        for r in readings:
            quick = bounds.get(r.device_type)
            if not quick:
                continue
            view = None
            for rule, threshold in quick:
                key = (rule.id, r.device_id)
                if not raises(threshold, r.metrics):
                    known.pop(key, None)
                    cleared.add(key)
                    continue
                cleared.discard(key)
                if known.get(key, fresh_after) <= fresh_after:
                    if view is None:
                        view = DeviceView(r.device_id, r.device_type, _at(r.ts), latest=r.metrics)
                    verdict = evaluate(rule.when, view, False)
                    hits.append((rule, r.device_id, r.device_type, view, verdict))
        candidates: list[tuple[Rule, str, str, DeviceView]] = []
        for e in events:
            rules = self.on_event.get(e.device_type)
            if rules:
                code = e.data.get("code")
                seen = EventSeen(_at(e.ts), e.name, str(code) if code is not None else None)
                view = DeviceView(e.device_id, e.device_type, _at(e.ts), events=[seen])
                candidates += [(rule, e.device_id, e.device_type, view) for rule in rules]
        for rule, device_id, device_type, view in candidates:
            verdict = evaluate(rule.when, view, False)
            key = (rule.id, device_id)
            if verdict.active is not True:
                known.pop(key, None)
                cleared.add(key)
                continue
            cleared.discard(key)
            if known.get(key, fresh_after) <= fresh_after:
                hits.append((rule, device_id, device_type, view, verdict))
        if not hits:
            return tally
        # only the rules that hit: a device's state holds a row for every rule of its
        # type, and reading them all made a batch cost more with each fault left firing
        devices, rule_ids = {h[1] for h in hits}, {h[0].id for h in hits}
        saved = self.alerts.load_states(devices, rule_ids)
        resolved = self.alerts.last_resolved(devices, rule_ids)
        changed: dict[tuple[str, str], dict[str, Any]] = {}
        for rule, device_id, device_type, view, verdict in hits:
            key = (rule.id, device_id)
            if key in resolved and view.now <= resolved[key]:
                # older than the resolution of its rule's last alert: a message delivered
                # again (after a crash, or resent after a broker restart) belongs to the
                # episode already closed, and must not open another
                continue
            before = state_of(changed.get(key) or saved.get(key), rule.id, device_id)
            if before.phase is Phase.FIRING:
                if key not in cleared:
                    known[key] = now
                continue
            after, action = step(before, True, rule, view.now, verdict.value)
            if action is Action.FIRE:
                self.actions.fire(rule, device_id, device_type, verdict, view.now, tally)
            changed[key] = row_of(after)
        self.alerts.save_states(list(changed.values()))
        # remembered once saved: a failed save leaves the store to be read again
        known.update(
            (k, now)
            for k, row in changed.items()
            if row["phase"] == Phase.FIRING.value and k not in cleared
        )
        return tally

    def _prune(self, now: float) -> None:
        """Forget what is past trusting, now and then (the memory holds a fleet's firing
        alerts at most, and each entry would only be read again anyway)."""
        if now - self._pruned_at < self.firing_memory_s:
            return
        self._pruned_at = now
        stale = now - self.firing_memory_s
        self.known_firing = {k: at for k, at in self.known_firing.items() if at > stale}


def _at(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)
