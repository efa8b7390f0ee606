"""The key ledger, on SQLite and PostgreSQL: the first claim of a key wins; a later claim
of it is a repeat (same device time) or an extra copy (another time) to be forgotten."""

from __future__ import annotations

import threading

import pytest

from db.database import Database
from ingest.key_ledger import KeyLedger
from telemetry.records import Reading


@pytest.fixture
def migrated(db: Database) -> Database:
    db.upgrade()
    return db


def reading(seq: int, ts: int, *, device_id: str = "p-1", boot: int = 1) -> Reading:
    return Reading(
        device_type="purifier",
        device_id=device_id,
        ts=ts,
        seq=seq,
        boot=boot,
        metrics={"pm25": 1.0},
    )


def test_the_first_claim_wins_and_later_ones_say_how_they_differ(migrated: Database) -> None:
    ledger = KeyLedger(migrated, horizon_s=900)
    mine = [reading(1, 1000), reading(2, 2000)]
    first = ledger.claim(mine, now=100.0)
    assert first.won == mine
    assert first.duplicates == []
    again = [reading(1, 1000), reading(2, 2555), reading(3, 3000)]
    later = ledger.claim(again, now=101.0)
    assert later.repeats == [again[0]]  # the same point: nothing to undo
    assert later.extra == [again[1]]  # a second point: forget it
    # the key, not the time, is the message: another boot or device is another message
    other = ledger.claim([reading(1, 1000, boot=2), reading(1, 1000, device_id="p-2")], now=102.0)
    assert other.duplicates == []


def test_a_released_key_is_new_again_and_only_its_own_copy_is_released(
    migrated: Database,
) -> None:
    ledger = KeyLedger(migrated, horizon_s=900)
    ledger.claim([reading(1, 1000), reading(2, 2000)], now=100.0)
    ledger.release([reading(1, 1000), reading(2, 2555)])  # 2 was stored with 2000
    assert ledger.claim([reading(1, 1111)], now=101.0).duplicates == []
    assert ledger.claim([reading(2, 2555)], now=101.0).extra != []


def test_claims_older_than_the_horizon_are_pruned(migrated: Database) -> None:
    ledger = KeyLedger(migrated, horizon_s=60)
    ledger.claim([reading(1, 1000)], now=100.0)
    ledger.claim([reading(2, 2000)], now=150.0)
    assert ledger.prune(now=170.0) == 1
    assert ledger.claim([reading(1, 9999)], now=171.0).duplicates == []
    assert ledger.claim([reading(2, 9999)], now=172.0).extra != []


def test_two_workers_claiming_the_same_keys_at_once_get_one_winner_per_key(
    migrated: Database,
) -> None:
    """Both claim 2,000 keys (one in reverse order) at the same moment: no deadlock, and
    every key is won by exactly one."""
    items = [reading(s, 10 * s, device_id=f"p-{s % 7}") for s in range(2000)]
    ledgers = [KeyLedger(migrated, horizon_s=900), KeyLedger(migrated, horizon_s=900)]
    results: list[int] = [0, 0]
    go = threading.Barrier(2)

    def claim(k: int) -> None:
        go.wait()
        batch = items if k == 0 else items[::-1]
        results[k] = len(batch) - len(ledgers[k].claim(batch, now=1.0).duplicates)

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(results) == len(items)
