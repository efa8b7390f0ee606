"""Make one batch of raw messages durable: decode, de-duplicate, store, dead-letter, state.

Retries are the caller's: `process` raises StoreUnavailable / DatabaseUnavailable and can be
called again with the same `Batch`; stages already done are not redone.

What is derived from a stored batch (the per-message rules) runs after it, on its own
task (`run_observers`), so the batch is acknowledged without waiting for it: the rules'
work grows with the alerts a fleet has firing, and it used to hold up every
acknowledgement. A backlog of `observer_backlog` batches bounds it; past that a batch is
left to the evaluator, which judges the same rules on its next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import sqlalchemy as sa

from db.errors import DatabaseUnavailable
from fleet.registry import DeviceRegistry
from fleet.state import DeviceStateRepository, StateUpdate
from ingest.dead_letters import DeadLetterRepository, NewDeadLetter
from ingest.decode import Decoder, Ignored, Reject, Rejected, StatusChange
from ingest.key_ledger import KeyLedger, Settled
from ingest.metrics import IngestMetrics
from telemetry.errors import StoreQueryError, StoreRejected
from telemetry.profile import ProfileSet
from telemetry.records import Event, Reading
from telemetry.store import KeyedByTime, TelemetryStore

Key = tuple[str, int, int]
log = logging.getLogger("fleetcare.ingest")


class RawMessage(NamedTuple):
    """A message as it came off the wire (a tuple: one is made per message)."""

    topic: str
    payload: bytes
    received_at: float  # time.time() at receipt


@dataclass
class Batch:
    """One batch and how far its processing got."""

    messages: Sequence[RawMessage]
    readings: list[Reading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    status_raw: list[RawMessage] = field(default_factory=list)  # beside `statuses`
    rejected: list[tuple[RawMessage, Rejected]] = field(default_factory=list)
    raw_of: dict[Key, RawMessage] = field(default_factory=dict)
    ignored: int = 0
    duplicates: int = 0
    stored: int = 0
    decoded: bool = False
    store_done: bool = False
    claimed: Settled | None = None  # what the key ledger said of the batch's keys
    forget: list[Reading | Event] | None = None  # copies left to remove from the store
    settled: bool = False
    db_done: bool = False


class RecentKeys:
    """Bounded memory of recently stored message ids (cheap duplicate skip and count): at
    least the last `capacity / 2` ids and at most `capacity`, in two generations of sets.
    A set holds an id in half the memory of an ordered dict (a fleet of 100k devices kept
    17 MB in one), and a full generation is dropped whole instead of one id at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._young: set[Key] = set()
        self._old: set[Key] = set()

    def __contains__(self, key: Key) -> bool:
        return key in self._young or key in self._old

    def add_many(self, keys: Sequence[Key]) -> None:
        if self.capacity <= 0:
            return
        self._young.update(keys)
        if len(self._young) >= self.capacity // 2:
            self._old, self._young = self._young, set()


class RegistryCache:
    """Which devices are registered (and as what), refreshed every `ttl` seconds.
    `required`: an unregistered device's messages are dead letters; either way a
    registered device that publishes under another type's topics is refused (the broker's
    ACL lets a device choose the type segment of its own topics)."""

    def __init__(self, registry: DeviceRegistry, ttl: float, *, required: bool = True) -> None:
        self.registry = registry
        self.ttl = ttl
        self.required = required
        self._known: dict[str, tuple[str | None, float]] = {}

    def types(self, device_ids: set[str]) -> dict[str, str | None]:
        now = time.monotonic()
        stale = [
            d for d in device_ids if d not in self._known or now - self._known[d][1] > self.ttl
        ]
        if stale:
            try:
                found = self.registry.types_of(stale)
            except sa.exc.OperationalError as exc:
                if not self.required:
                    # only the type check waits for the database: telemetry keeps flowing
                    # through an outage, on what was last known (unknown: accepted)
                    return {d: self._known.get(d, (None, 0.0))[0] for d in device_ids}
                raise DatabaseUnavailable(f"registry lookup: {exc.orig}") from exc
            for d in stale:
                self._known[d] = (found.get(d), now)
            if len(self._known) > 1_000_000:
                self._known.clear()
        return {d: self._known[d][0] for d in device_ids}


class FirmwareCache:
    """Which firmware each device runs: from its status messages as they pass, else from
    its stored state, re-read every `ttl` seconds."""

    def __init__(self, state: DeviceStateRepository, ttl: float) -> None:
        self.state = state
        self.ttl = ttl
        self._known: dict[str, tuple[str | None, float]] = {}

    def note(self, statuses: Sequence[StatusChange]) -> None:
        now = time.monotonic()
        for s in statuses:
            if s.firmware:
                self._known[s.device_id] = (s.firmware, now)

    def firmware(self, device_ids: set[str]) -> dict[str, str | None]:
        now = time.monotonic()
        stale = [
            d for d in device_ids if d not in self._known or now - self._known[d][1] > self.ttl
        ]
        if stale:
            try:
                found = self.state.firmware_of(stale)
            except sa.exc.OperationalError as exc:
                raise DatabaseUnavailable(f"firmware lookup: {exc.orig}") from exc
            for d in stale:
                self._known[d] = (found.get(d), now)
            if len(self._known) > 1_000_000:
                self._known.clear()
        return {d: self._known[d][0] for d in device_ids}


class StateBuffer:
    """Device-state updates waiting to be written. State is derived from data that is
    already durable, so it is written every few seconds off the acknowledgement path:
    one row per device per interval instead of one per device per batch."""

    def __init__(self) -> None:
        self._updates: list[StateUpdate] = []

    def add(self, updates: Sequence[StateUpdate]) -> None:
        self._updates.extend(updates)

    def take(self) -> list[StateUpdate]:
        taken, self._updates = self._updates, []
        return taken

    def put_back(self, updates: list[StateUpdate]) -> None:
        self._updates = updates + self._updates

    def __len__(self) -> int:
        return len(self._updates)


class BatchObserver(Protocol):
    """Told of each batch once it is durable (e.g. the per-message rules). It must not
    raise: ingest does not wait on what it derives."""

    async def on_batch(self, readings: Sequence[Reading], events: Sequence[Event]) -> None: ...

    async def use_profiles(self, profiles: ProfileSet) -> None:
        """Judge by these profiles from now on (a new family, a new version)."""


class BatchProcessor:
    def __init__(
        self,
        *,
        decoder: Decoder,
        store: TelemetryStore,
        dead_letters: DeadLetterRepository,
        state: DeviceStateRepository,
        metrics: IngestMetrics,
        registry: RegistryCache | None = None,
        dedupe_capacity: int = 200_000,
        observers: Sequence[BatchObserver] = (),
        observer_backlog: int = 64,
        firmware: FirmwareCache | None = None,
        ledger: KeyLedger | None = None,
    ) -> None:
        """`firmware`: check each reading's metrics against its device's firmware, where
        its profile says which release added which metric. `ledger`: settle with the other
        workers of a shared subscription which copy of a repeated message is stored (for
        a store keyed by time)."""
        if ledger is not None and not isinstance(store, KeyedByTime):
            raise TypeError(f"the {store.name} store is keyed by message: it needs no ledger")
        self.ledger = ledger
        self.decoder = decoder
        self.firmware = firmware
        self.observers = list(observers)
        self._derived: asyncio.Queue[tuple[list[Reading], list[Event]]] = asyncio.Queue(
            max(1, observer_backlog)
        )
        self.store = store
        self.dead_letters = dead_letters
        self.state = state
        self.metrics = metrics
        self.registry = registry
        self.recent = RecentKeys(dedupe_capacity)
        self.pending_state = StateBuffer()

    async def process(self, batch: Batch) -> Batch:
        if not batch.decoded:
            await self._decode(batch)
        claim = self.ledger is not None and batch.claimed is None
        if not batch.store_done or claim:
            await self._store_and_claim(batch, claim)
        if self.ledger is not None and not batch.settled:
            await self._settle(batch)
        if not batch.db_done:
            if batch.rejected:
                await asyncio.to_thread(self._persist_dead_letters, batch)
            batch.db_done = True
            self.pending_state.add(self._state_updates(batch))
            self._count(batch)
            self._derive(batch)
        return batch

    def _derive(self, batch: Batch) -> None:
        if not self.observers or not (batch.readings or batch.events):
            return
        try:
            self._derived.put_nowait((batch.readings, batch.events))
        except asyncio.QueueFull:
            self.metrics.rules_skipped.inc()
        self.metrics.rules_backlog.set(self._derived.qsize())

    async def run_observers(self) -> None:
        """Tell the observers of each stored batch, in order, until cancelled."""
        while True:
            readings, events = await self._derived.get()
            started = time.monotonic()
            for observer in self.observers:
                try:
                    await observer.on_batch(readings, events)
                except Exception:  # one that breaks its promise must not stop the others
                    log.exception("an ingest observer failed; the evaluator judges the batch")
            self.metrics.rules_seconds.observe(time.monotonic() - started)
            self._derived.task_done()
            self.metrics.rules_backlog.set(self._derived.qsize())

    async def observers_idle(self) -> None:
        """Returns once every stored batch has been through the observers."""
        await self._derived.join()

    async def _decode(self, batch: Batch) -> None:
        now_ms = int(time.time() * 1000)
        seen: set[Key] = set()
        decode = self.decoder.decode
        for raw in batch.messages:
            d = decode(raw.topic, raw.payload, now_ms)
            if isinstance(d, Reading | Event):
                key = (d.device_id, d.boot, d.seq)
                if key in seen or key in self.recent:
                    batch.duplicates += 1
                    continue
                seen.add(key)
                batch.raw_of[key] = raw
                (batch.readings if isinstance(d, Reading) else batch.events).append(d)  # type: ignore[arg-type]
            elif isinstance(d, StatusChange):
                batch.statuses.append(d)
                batch.status_raw.append(raw)
            elif isinstance(d, Rejected):
                batch.rejected.append((raw, d))
            elif isinstance(d, Ignored):
                batch.ignored += 1
        if self.registry is not None:
            await asyncio.to_thread(self._enforce_registry, batch)
        if self.firmware is not None and batch.readings:
            self.firmware.note(batch.statuses)
            await asyncio.to_thread(self._enforce_firmware, batch)
        batch.decoded = True

    async def use_profiles(self, profiles: ProfileSet) -> bool:
        """Decode with `profiles` from now on (the store learns their metrics first, so a
        message is accepted only once it can be stored). True if anything changed."""
        if profiles.fingerprint == self.decoder.profiles.fingerprint:
            return False
        await self.store.use_types(profiles.types)
        self.decoder = self.decoder.with_profiles(profiles)
        for observer in self.observers:
            await observer.use_profiles(profiles)
        return True

    def _enforce_firmware(self, batch: Batch) -> None:
        """A metric newer than the firmware its device runs is a dead letter (replayed
        once the device reports its new firmware, or the profile is corrected)."""
        assert self.firmware is not None
        profiles = self.decoder.profiles
        checked = {
            n for n, p in profiles.items() if any(f.adds or f.removes for f in p.doc.firmware)
        }
        ids = {r.device_id for r in batch.readings if r.device_type in checked}
        if not ids:
            return
        runs = self.firmware.firmware(ids)
        kept = []
        for r in batch.readings:
            fw = runs.get(r.device_id) if r.device_type in checked else None
            extra = sorted(r.metrics.keys() - profiles[r.device_type].metrics_for(fw)) if fw else []
            if not extra:
                kept.append(r)
                continue
            p = profiles[r.device_type]
            since = ", ".join(f"{m} (firmware {p.release_of(m) or '?'})" for m in extra)
            why = Rejected(
                Reject.UNKNOWN_METRIC,
                f"{since} of profile {p.label}, but {r.device_id} runs firmware {fw}: "
                "replay once it reports the firmware it runs",
                r.device_type,
                r.device_id,
            )
            batch.rejected.append((self._raw_for(batch, r), why))
        batch.readings = kept

    def _enforce_registry(self, batch: Batch) -> None:
        registry = self.registry
        assert registry is not None
        ids = {r.device_id for r in batch.readings} | {e.device_id for e in batch.events}
        ids |= {s.device_id for s in batch.statuses}
        if not ids:
            return
        types = registry.types(ids)

        def check(item: Reading | Event | StatusChange) -> Rejected | None:
            registered = types.get(item.device_id)
            if registered is None:
                if not registry.required or isinstance(item, StatusChange):
                    return None
                return Rejected(
                    Reject.UNREGISTERED,
                    f"device {item.device_id!r} is not in the registry (or disabled): "
                    "register it, then replay",
                    item.device_type,
                    item.device_id,
                )
            if registered != item.device_type:
                return Rejected(
                    Reject.TYPE_MISMATCH,
                    f"device {item.device_id!r} is registered as {registered}, "
                    f"published as {item.device_type}",
                    item.device_type,
                    item.device_id,
                )
            return None

        for name in ("readings", "events"):
            kept = []
            for item in getattr(batch, name):
                why = check(item)
                if why is None:
                    kept.append(item)
                else:
                    batch.rejected.append((self._raw_for(batch, item), why))
            setattr(batch, name, kept)
        statuses, raws = [], []
        for st, raw in zip(batch.statuses, batch.status_raw, strict=True):
            why = check(st)
            if why is None:
                statuses.append(st)
                raws.append(raw)
            else:
                batch.rejected.append((raw, why))
        batch.statuses, batch.status_raw = statuses, raws

    @staticmethod
    def _raw_for(batch: Batch, item: Reading | Event) -> RawMessage:
        return batch.raw_of[(item.device_id, item.boot, item.seq)]

    async def _store(self, batch: Batch) -> None:
        started = time.monotonic()
        try:
            result = await self.store.write(batch.readings, batch.events)
            batch.stored = result.written
            if result.duplicates:
                batch.duplicates += result.duplicates
        except StoreRejected:
            # copies: the bisection removes refused items from the batch's own lists
            await self._bisect(batch, list(batch.readings), list(batch.events))
        batch.store_done = True
        self.metrics.store_seconds.observe(time.monotonic() - started)

    async def _store_and_claim(self, batch: Batch, claim: bool) -> None:
        """The write and the ledger's claim run side by side: every copy is written (a
        repeat with the same time rewrites its own point), the claim only says which
        copies to count as duplicates and which points to forget afterwards."""
        jobs = []
        if not batch.store_done:
            jobs.append(self._store(batch))
        if claim:
            assert self.ledger is not None
            items: list[Reading | Event] = [*batch.readings, *batch.events]
            jobs.append(self._claim(self.ledger, batch, items))
        for outcome in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    @staticmethod
    async def _claim(ledger: KeyLedger, batch: Batch, items: list[Reading | Event]) -> None:
        batch.claimed = await asyncio.to_thread(ledger.claim, items, time.time())

    async def _settle(self, batch: Batch) -> None:
        """A key another worker stored first is a duplicate; where it was stored with
        another device time, this worker's point is removed. A key this worker claimed
        for a message the store refused (a dead letter now) is given back."""
        assert self.ledger is not None
        assert isinstance(self.store, KeyedByTime)
        claimed = batch.claimed
        assert claimed is not None
        if batch.forget is None:
            kept = {id(i) for i in (*batch.readings, *batch.events)}
            refused = [i for i in claimed.won if id(i) not in kept]
            if refused:
                await asyncio.to_thread(self.ledger.release, refused)
            duplicates = [i for i in claimed.duplicates if id(i) in kept]
            if duplicates:
                gone = {id(i) for i in duplicates}
                batch.readings = [r for r in batch.readings if id(r) not in gone]
                batch.events = [e for e in batch.events if id(e) not in gone]
                batch.stored -= len(gone)
                batch.duplicates += len(gone)
                self.metrics.repeats_settled.inc(len(gone))
                self.recent.add_many([(i.device_id, i.boot, i.seq) for i in duplicates])
            batch.forget = [i for i in claimed.extra if id(i) in kept]
        if batch.forget:
            try:
                await self.store.forget(batch.forget)
            except StoreQueryError as exc:  # refused, not unreachable: retrying cannot help
                keys = [(i.device_id, i.boot, i.seq) for i in batch.forget[:10]]
                log.error(
                    "a repeated message's second copy stays stored: the store refused to "
                    "delete it (give the engine's account the right to delete)",
                    extra={"kv": {"error": str(exc), "keys": keys, "copies": len(batch.forget)}},
                )
        batch.settled = True

    async def _bisect(self, batch: Batch, readings: list[Reading], events: list[Event]) -> None:
        """Find the messages the store refuses; store the rest, dead-letter those."""
        await self._bisect_items(batch, [*readings, *events])

    async def _bisect_items(self, batch: Batch, items: list[Reading | Event]) -> None:
        readings = [i for i in items if isinstance(i, Reading)]
        events = [i for i in items if isinstance(i, Event)]
        try:
            result = await self.store.write(readings, events)
            batch.stored += result.written
            return
        except StoreRejected as exc:
            if len(items) == 1:
                item = items[0]
                why = Rejected(Reject.STORE_REJECTED, str(exc), item.device_type, item.device_id)
                batch.rejected.append((self._raw_for(batch, item), why))
                if isinstance(item, Reading):
                    batch.readings.remove(item)
                else:
                    batch.events.remove(item)
                return
        mid = len(items) // 2  # len >= 2: both halves strictly smaller
        for half in (items[:mid], items[mid:]):
            await self._bisect_items(batch, half)

    def _persist_dead_letters(self, batch: Batch) -> None:
        letters = [
            NewDeadLetter(
                raw.topic,
                raw.payload,
                r.reason.value,
                r.detail,
                datetime.fromtimestamp(raw.received_at, UTC),
                r.device_type,
                r.device_id,
            )
            for raw, r in batch.rejected
        ]
        try:
            self.dead_letters.record(letters)
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable(f"{self.dead_letters.db.safe_url}: {exc.orig}") from exc

    @staticmethod
    def _state_updates(batch: Batch) -> list[StateUpdate]:
        now = datetime.now(UTC)
        updates: dict[str, StateUpdate] = {}
        for s in batch.statuses:  # status first: a message in the same batch proves online
            updates[s.device_id] = StateUpdate(
                s.device_id,
                s.device_type,
                now,
                online=s.online,
                status_ts=s.ts,
                firmware=s.firmware,
                boot=s.boot,
            )
        out = list(updates.values())
        updates = {}
        for r in batch.readings:
            u = updates.get(r.device_id)
            if u is None:
                u = updates[r.device_id] = StateUpdate(r.device_id, r.device_type, now)
            u.messages += 1
            if u.last_seen_ts is None or r.ts >= u.last_seen_ts:
                u.last_seen_ts, u.boot, u.seq = r.ts, r.boot, r.seq
            if u.latest_ts is None or r.ts >= u.latest_ts:
                u.latest_ts = r.ts
                u.metrics.update(r.metrics)
            else:
                u.metrics.update({k: v for k, v in r.metrics.items() if k not in u.metrics})
        for e in batch.events:
            u = updates.get(e.device_id)
            if u is None:
                u = updates[e.device_id] = StateUpdate(e.device_id, e.device_type, now)
            u.messages += 1
            if u.last_seen_ts is None or e.ts >= u.last_seen_ts:
                u.last_seen_ts, u.boot, u.seq = e.ts, e.boot, e.seq
        return out + list(updates.values())

    def _count(self, batch: Batch) -> None:
        m = self.metrics
        self.recent.add_many([(r.device_id, r.boot, r.seq) for r in batch.readings])
        self.recent.add_many([(e.device_id, e.boot, e.seq) for e in batch.events])
        stored_events = min(len(batch.events), batch.stored)
        m.stored.labels("event").inc(stored_events)
        m.stored.labels("telemetry").inc(max(0, batch.stored - stored_events))
        m.duplicates.inc(batch.duplicates)
        m.status_updates.inc(len(batch.statuses))
        for _, r in batch.rejected:
            m.dead_letters.labels(r.reason.value).inc()
