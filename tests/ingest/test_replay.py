"""Dead letters replay through today's validation once their cause is fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fleet.registry import Device, DeviceRegistry
from fleet.state import DeviceStateRepository
from fleetcare.settings import load_settings
from fleetcare.wiring import make_decoder, open_database
from ingest.dead_letters import DeadLetterRepository, NewDeadLetter
from ingest.processor import RegistryCache
from ingest.replay import replay
from telemetry.backends import create_store
from tests.ingest.helpers import telemetry


async def test_registering_a_device_then_replaying_stores_its_messages(tmp_path: Path) -> None:
    s = load_settings(None, data_dir=str(tmp_path), ingest={"require_registered": True})
    db = open_database(s)
    repo = DeadLetterRepository(db)
    now = datetime.now(UTC)
    repo.record(
        [
            NewDeadLetter(*telemetry("p-late", i), "unregistered", "not registered", now)
            for i in range(3)
        ]
        + [NewDeadLetter("fleetcare/v1/purifier/p-late/telemetry", b"junk", "not_json", "bad", now)]
    )
    async with create_store(s.store, s.data_dir) as store:
        kwargs = {
            "decoder": make_decoder(s),
            "store": store,
            "dead_letters": repo,
            "state": DeviceStateRepository(db),
            "registry": RegistryCache(DeviceRegistry(db), 0),
        }
        report = await replay(repo.list(), **kwargs)  # type: ignore[arg-type]
        assert report.stored == [] and len(report.still_rejected) == 4
        DeviceRegistry(db).register([Device("p-late", "purifier")])
        report = await replay(repo.list(), **kwargs)  # type: ignore[arg-type]
        assert len(report.stored) == 3
        assert await store.count(device_id="p-late") == 3
    [left] = repo.list()
    assert left.reason == "not_json"
    assert DeviceStateRepository(db).get("p-late").messages_total == 3
