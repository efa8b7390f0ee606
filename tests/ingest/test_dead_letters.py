"""Dead letters: one per distinct bad message, counted; a replay resolves them."""

from __future__ import annotations

from datetime import UTC, datetime

from db.database import Database
from ingest.dead_letters import DeadLetterRepository, NewDeadLetter


def test_the_same_bad_message_twice_is_one_dead_letter_counted_twice(db: Database) -> None:
    db.upgrade()
    repo = DeadLetterRepository(db)
    now = datetime.now(UTC)
    bad = NewDeadLetter("fleetcare/v1/purifier/p-1/telemetry", b"nope", "not_json", "x", now)
    repo.record([bad, bad])
    repo.record([bad])
    [letter] = repo.list()
    assert letter.count == 3 and letter.payload == b"nope"
    repo.resolve([letter.id], "replayed")
    assert repo.list() == []
    repo.record([bad])  # seen again after a replay: pending again
    assert repo.list()[0].count == 4
