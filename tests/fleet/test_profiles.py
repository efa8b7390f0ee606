"""Profiles in the database (SQLite and PostgreSQL): versions only go up, the history is
kept, and a long-running part sees a new version without a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from db.database import Database
from db.errors import NotFound
from fleet.profiles import LiveProfiles, ProfileRefused, ProfileRepository
from telemetry.profile import ProfileDoc, shipped

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def dehumidifier(version: int, **change: object) -> ProfileDoc:
    base = shipped()["dehumidifier"].doc
    return base.model_copy(update={"version": version, **change})


def test_a_new_version_is_in_force_and_the_history_keeps_every_one(db: Database) -> None:
    db.upgrade()
    repo = ProfileRepository(db)
    assert repo.current()["dehumidifier"].source == "shipped"
    v2 = repo.import_(dehumidifier(2, title="Dehumidifier II"), source="dh.yaml", now=T0)
    assert v2.created
    assert repo.current()["dehumidifier"].doc.title == "Dehumidifier II"
    assert repo.current()["purifier"].source == "shipped"  # the others are untouched
    again = repo.import_(dehumidifier(2, title="Dehumidifier II"), source="dh.yaml")
    assert not again.created
    history = repo.history("dehumidifier")
    assert [(v.version, v.source, v.in_force) for v in history] == [
        (1, "shipped", False),
        (2, "dh.yaml", True),
    ]
    assert history[1].imported_at == T0
    assert repo.get("dehumidifier", 1).doc.title == "Dehumidifier"
    assert repo.get("dehumidifier").version == 2
    with pytest.raises(NotFound):
        repo.get("dehumidifier", 7)
    with pytest.raises(NotFound):
        repo.history("toaster")


@pytest.mark.parametrize(
    ("version", "why"),
    [
        (2, "already imported with other content: raise its version"),
        (1, "would replace the shipped dehumidifier v1: give it version 3"),
    ],
)
def test_a_family_history_is_never_rewritten(db: Database, version: int, why: str) -> None:
    db.upgrade()
    repo = ProfileRepository(db)
    repo.import_(dehumidifier(2, title="Dehumidifier II"), source="a")
    with pytest.raises(ProfileRefused, match=why):
        repo.import_(dehumidifier(version, title="Something else"), source="b")


def test_an_older_version_than_the_one_in_force_is_refused(db: Database) -> None:
    db.upgrade()
    repo = ProfileRepository(db)
    repo.import_(dehumidifier(5), source="a")
    with pytest.raises(ProfileRefused, match="older than dehumidifier v5"):
        repo.import_(dehumidifier(3), source="b")


def test_a_running_part_sees_a_new_version_once_its_ttl_has_passed(db: Database) -> None:
    db.upgrade()
    repo = ProfileRepository(db)
    clock = [0.0]
    live = LiveProfiles(repo, ttl=10, clock=lambda: clock[0])
    assert live.get()["dehumidifier"].version == 1
    repo.import_(dehumidifier(2), source="a")
    clock[0] = 5.0
    assert live.get()["dehumidifier"].version == 1  # not yet looked
    clock[0] = 10.0
    assert live.get()["dehumidifier"].version == 2


def test_several_files_are_imported_all_or_nothing(db: Database) -> None:
    db.upgrade()
    repo = ProfileRepository(db)
    repo.import_(dehumidifier(3), source="a")
    purifier = shipped()["purifier"].doc.model_copy(update={"version": 2})
    with pytest.raises(ProfileRefused, match="older than dehumidifier v3"):
        repo.import_all([(purifier, "p.yaml"), (dehumidifier(2), "d.yaml")])
    assert repo.current()["purifier"].version == 1  # the good one was not kept either
    with pytest.raises(ProfileRefused, match="dehumidifier: given more than once"):
        repo.import_all([(dehumidifier(4), "x"), (dehumidifier(5), "y")])
    done = repo.import_all([(purifier, "p.yaml"), (dehumidifier(4), "d.yaml")])
    assert [d.created for d in done] == [True, True]
    assert repo.current()["purifier"].version == 2
    assert repo.current()["dehumidifier"].version == 4
