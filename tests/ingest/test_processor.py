"""Batch processing against a store that refuses some messages (a fake: pure logic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fleetcare.settings import load_settings
from fleetcare.wiring import make_decoder, open_database
from ingest.metrics import IngestMetrics
from ingest.processor import Batch, BatchProcessor, RawMessage
from telemetry.errors import StoreRejected
from telemetry.records import Event, Reading, WriteResult
from tests.ingest.helpers import now_ms, telemetry, topic
from workorders.db import Database
from workorders.dead_letters import DeadLetterRepository
from workorders.device_state import DeviceStateRepository


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
    tmp_path: Path, refuse: set[str]
) -> tuple[RefusingStore, BatchProcessor, Database]:
    s = load_settings(None, data_dir=str(tmp_path))
    db = open_database(s)
    store = RefusingStore(refuse)
    processor = BatchProcessor(
        decoder=make_decoder(s),
        store=store,  # type: ignore[arg-type]
        dead_letters=DeadLetterRepository(db),
        state=DeviceStateRepository(db),
        metrics=IngestMetrics(),
    )
    return store, processor, db


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
