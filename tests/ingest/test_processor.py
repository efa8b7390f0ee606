"""Batch processing against a store that refuses some messages, and with an observer that
is slow (fakes: pure logic)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from db.database import Database
from fleet.state import DeviceStateRepository
from fleetcare.settings import load_settings
from fleetcare.wiring import make_decoder, open_database
from ingest.dead_letters import DeadLetterRepository
from ingest.key_ledger import KeyLedger
from ingest.metrics import IngestMetrics
from ingest.processor import Batch, BatchObserver, BatchProcessor, RawMessage
from telemetry.errors import StoreQueryError, StoreRejected
from telemetry.records import Event, Reading, WriteResult
from tests.ingest.helpers import now_ms, telemetry, topic


class RefusingStore:
    """Refuses any write that contains a message of a device in `refuse`."""

    name = "refusing"

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.stored: list[Reading | Event] = []

    async def write(self, readings: Sequence[Reading], events: Sequence[Event] = ()) -> WriteResult:
        items = [*readings, *events]
        if any(i.device_id in self.refuse for i in items):
            raise StoreRejected(self.name, "refused")
        self.stored.extend(items)
        return WriteResult(written=len(items))


def make_processor(
    tmp_path: Path,
    refuse: set[str],
    observers: Sequence[BatchObserver] = (),
    observer_backlog: int = 64,
    *,
    store: RefusingStore | None = None,
    ledger: Callable[[Database], KeyLedger] | None = None,
) -> tuple[RefusingStore, BatchProcessor, Database]:
    s = load_settings(None, data_dir=str(tmp_path))
    db = open_database(s)
    store = store or RefusingStore(refuse)
    processor = BatchProcessor(
        decoder=make_decoder(s),
        store=store,  # type: ignore[arg-type]
        dead_letters=DeadLetterRepository(db),
        state=DeviceStateRepository(db),
        metrics=IngestMetrics(),
        observers=observers,
        observer_backlog=observer_backlog,
        ledger=ledger(db) if ledger else None,
    )
    return store, processor, db


class SlowObserver:
    """Holds every batch until released: per-message rules on a busy database."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[list[str]] = []

    async def on_batch(self, readings: Sequence[Reading], events: Sequence[Event]) -> None:
        await self.release.wait()
        self.seen.append([r.device_id for r in readings])


async def test_a_batch_is_durable_without_waiting_for_what_is_derived_from_it(
    tmp_path: Path,
) -> None:
    """The per-message rules run after the batch (and so its acknowledgement), in order;
    a backlog past its bound is left to the evaluator and counted, never waited for."""
    slow = SlowObserver()
    store, processor, db = make_processor(tmp_path, set(), [slow], observer_backlog=2)
    derived = asyncio.create_task(processor.run_observers())
    for n in range(4):  # the observer holds the first; two wait; the fourth is left
        batch = Batch([RawMessage(*telemetry(f"ap-{n}", 1), 0.0)])
        await asyncio.wait_for(processor.process(batch), 5)
        assert batch.db_done and batch.stored == 1
        await asyncio.sleep(0.01)  # the observer's task takes the first one
    assert len(store.stored) == 4 and slow.seen == []
    assert processor.metrics.rules_skipped._value.get() == 1
    slow.release.set()
    await asyncio.wait_for(processor.observers_idle(), 5)
    assert slow.seen == [["ap-0"], ["ap-1"], ["ap-2"]]
    assert processor.metrics.rules_backlog._value.get() == 0
    derived.cancel()
    db.dispose()


async def test_bisection_stores_everything_but_the_refused_messages(tmp_path: Path) -> None:
    import orjson

    store, processor, db = make_processor(tmp_path, {"bad-1", "bad-2"})
    event = orjson.dumps(
        {
            "v": 1,
            "device_id": "ev-1",
            "ts": now_ms(),
            "seq": 1,
            "boot": 1,
            "event": "fault",
            "data": {"code": "E1"},
        }
    )
    msgs = [telemetry(f"ok-{i}", i) for i in range(9)]
    msgs[3] = telemetry("bad-1", 3)
    msgs.append(telemetry("bad-2", 1))
    msgs.append((topic("purifier", "ev-1", "event"), event))
    batch = await processor.process(Batch([RawMessage(t, p, 0.0) for t, p in msgs]))
    assert sorted(i.device_id for i in store.stored) == sorted(
        [f"ok-{i}" for i in range(9) if i != 3] + ["ev-1"]
    )
    assert sorted(d.device_id or "" for d in DeadLetterRepository(db).list()) == ["bad-1", "bad-2"]
    assert batch.stored == 9


async def test_one_reading_and_one_event_refused_together_terminates(tmp_path: Path) -> None:
    import orjson

    store, processor, db = make_processor(tmp_path, {"bad"})
    event = orjson.dumps(
        {"v": 1, "device_id": "bad", "ts": now_ms(), "seq": 2, "boot": 1, "event": "fault"}
    )
    msgs = [telemetry("bad", 1), (topic("purifier", "bad", "event"), event)]
    await processor.process(Batch([RawMessage(t, p, 0.0) for t, p in msgs]))
    assert store.stored == []
    assert len(DeadLetterRepository(db).list()) == 2


def test_recent_ids_are_remembered_for_at_least_half_the_capacity_and_never_more() -> None:
    from ingest.processor import RecentKeys

    recent = RecentKeys(1000)
    keys = [("ap-1", 1, seq) for seq in range(5000)]
    for start in range(0, 5000, 100):
        recent.add_many(keys[start : start + 100])
        assert all(k in recent for k in keys[max(0, start + 100 - 500) : start + 100])
        assert sum(k in recent for k in keys[: start + 100]) <= 1000
    assert keys[0] not in recent
    assert ("ap-2", 1, 4999) not in recent


class UndeletableStore(RefusingStore):
    """Keys points by time, and refuses every delete (an account without the right, a
    server whose query API has no DELETE)."""

    async def forget(self, items: Sequence[Reading | Event]) -> None:
        raise StoreQueryError(self.name, "DELETE is not allowed")


async def test_a_store_that_refuses_to_forget_a_second_copy_does_not_stop_ingest(
    tmp_path: Path,
) -> None:
    """Another worker claimed ap-1's seq 1 with another time: this copy is a duplicate,
    whose point cannot be removed. It is counted, logged, and the batch goes through;
    retrying a refusal could only stall every device behind it."""
    _, processor, db = make_processor(
        tmp_path, set(), store=UndeletableStore(set()), ledger=lambda db: KeyLedger(db, 300)
    )
    ledger = processor.ledger
    assert ledger is not None
    base = now_ms() - 10_000
    other = Reading(
        device_type="purifier", device_id="ap-1", ts=base - 500, seq=1, boot=1, metrics={}
    )
    ledger.claim([other], now=1.0)
    msgs = [telemetry("ap-1", 1, ts=base), telemetry("ap-1", 2, ts=base + 1)]
    batch = await asyncio.wait_for(
        processor.process(Batch([RawMessage(t, p, 0.0) for t, p in msgs])), 5
    )
    assert batch.settled and batch.db_done
    assert (batch.stored, batch.duplicates) == (1, 1)
    assert [r.seq for r in batch.readings] == [2]
    db.dispose()
