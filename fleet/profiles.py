"""Product profiles in the database: every imported version, and the set in force.

The set in force is the shipped profiles (`telemetry.profile.shipped`) with, for each
family, the highest version imported on top. Versions only go up: a family's history is
never rewritten (importing a version again with the same content changes nothing; with
other content it is refused, and so is a version below the one in force). A running
engine notices a new version within `LiveProfiles.ttl` seconds, without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import profiles
from fleet.errors import FleetError
from telemetry.profile import Profile, ProfileDoc, ProfileSet, shipped


class ProfileRefused(FleetError):
    """An import that would rewrite a family's history; the message says what to change."""


@dataclass(frozen=True)
class Imported:
    profile: Profile
    created: bool  # False: this very version was already there


@dataclass(frozen=True)
class VersionRow:
    name: str
    version: int
    checksum: str
    imported_at: datetime | None  # None: a shipped version
    imported_by: str
    source: str
    in_force: bool


class ProfileRepository:
    def __init__(self, db: Database, base: ProfileSet | None = None) -> None:
        self.db = db
        self.base = base if base is not None else shipped()

    def import_(
        self,
        doc: ProfileDoc,
        *,
        source: str,
        actor: str = "cli",
        now: datetime | None = None,
    ) -> Imported:
        """Store a validated profile as a new version of its family."""
        return self.import_all([(doc, source)], actor=actor, now=now)[0]

    def import_all(
        self,
        docs: Sequence[tuple[ProfileDoc, str]],
        *,
        actor: str = "cli",
        now: datetime | None = None,
    ) -> list[Imported]:
        """Store validated profiles, each with its source, as new versions: all of them
        or, when one is refused, none (`ProfileRefused` names the one)."""
        names = [doc.name for doc, _ in docs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ProfileRefused(
                f"{', '.join(twice)}: given more than once; "
                "import one version of a family at a time"
            )
        with self.db.engine.begin() as conn:
            return [
                self._import(conn, doc, source, actor, now or datetime.now(UTC))
                for doc, source in docs
            ]

    def _import(
        self, conn: sa.Connection, doc: ProfileDoc, source: str, actor: str, now: datetime
    ) -> Imported:
        new = Profile(doc, "database")
        same = conn.execute(
            sa.select(profiles.c.checksum).where(
                profiles.c.name == doc.name, profiles.c.version == doc.version
            )
        ).scalar()
        if same is not None:
            if same == new.checksum:
                return Imported(new, created=False)
            raise ProfileRefused(
                f"{new.label} is already imported with other content: raise its version "
                "(every change is a new version; the history stays as it was)"
            )
        newest = conn.execute(
            sa.select(sa.func.max(profiles.c.version)).where(profiles.c.name == doc.name)
        ).scalar()
        floor = self.base.get(doc.name)
        if floor is not None and doc.version <= floor.version and floor.checksum != new.checksum:
            raise ProfileRefused(
                f"{new.label} would replace the shipped {floor.label}: give it version "
                f"{max(floor.version, newest or 0) + 1} or higher"
            )
        if newest is not None and doc.version < newest:
            raise ProfileRefused(
                f"{new.label} is older than {doc.name} v{newest}, which is in force: "
                f"give it version {newest + 1} or higher"
            )
        conn.execute(
            profiles.insert().values(
                name=doc.name,
                version=doc.version,
                doc=doc.model_dump(mode="json"),
                checksum=new.checksum,
                imported_at=now,
                imported_by=actor,
                source=source[:200],
            )
        )
        return Imported(new, created=True)

    def _latest(self, conn: sa.Connection) -> list[Profile]:
        newest = (
            sa.select(profiles.c.name, sa.func.max(profiles.c.version).label("version"))
            .group_by(profiles.c.name)
            .subquery()
        )
        rows = conn.execute(
            sa.select(profiles.c.doc).join(
                newest,
                sa.and_(profiles.c.name == newest.c.name, profiles.c.version == newest.c.version),
            )
        )
        return [Profile(ProfileDoc.model_validate(r.doc), "database") for r in rows]

    def current(self) -> ProfileSet:
        """The set in force: shipped, with newer imported versions on top."""
        with self.db.engine.connect() as conn:
            return self.base.overlay(self._latest(conn))

    def stamp(self) -> tuple[int, int]:
        """Changes whenever a version is imported (cheap: two aggregates)."""
        with self.db.engine.connect() as conn:
            n, top = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(profiles.c.version), 0))
            ).one()
        return int(n), int(top)

    def get(self, name: str, version: int | None = None) -> Profile:
        """One version (default: the one in force), imported or shipped."""
        if version is None:
            found = self.current().get(name)
            if found is None:
                raise NotFound("profile", name)
            return found
        with self.db.engine.connect() as conn:
            doc = conn.execute(
                sa.select(profiles.c.doc).where(
                    profiles.c.name == name, profiles.c.version == version
                )
            ).scalar()
        if doc is not None:
            return Profile(ProfileDoc.model_validate(doc), "database")
        base = self.base.get(name)
        if base is not None and base.version == version:
            return base
        raise NotFound("profile", f"{name} v{version}")

    def history(self, name: str) -> list[VersionRow]:
        """Every version of a family, oldest first, the shipped one included."""
        in_force = self.current().get(name)
        out: list[VersionRow] = []
        base = self.base.get(name)
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(profiles).where(profiles.c.name == name).order_by(profiles.c.version)
            ).all()
        imported = {r.version for r in rows}
        if base is not None and base.version not in imported:
            out.append(VersionRow(name, base.version, base.checksum, None, "-", "shipped", False))
        out += [
            VersionRow(r.name, r.version, r.checksum, r.imported_at, r.imported_by, r.source, False)
            for r in rows
        ]
        if not out:
            raise NotFound("profile", name)
        return [
            VersionRow(
                **{**v.__dict__, "in_force": in_force is not None and v.version == in_force.version}
            )
            for v in out
        ]


class LiveProfiles:
    """The set in force for a long-running part, re-read when a version was imported, at
    most every `ttl` seconds (one cheap query each time; the set itself only on change)."""

    def __init__(
        self,
        repository: ProfileRepository,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.ttl = ttl
        self.clock = clock
        self._stamp: tuple[int, int] | None = None
        self._set = repository.base
        self._checked = -float("inf")

    def get(self) -> ProfileSet:
        """The set in force (blocking: call it from a thread in async code)."""
        now = self.clock()
        if now - self._checked >= self.ttl:
            self._checked = now
            stamp = self.repository.stamp()
            if stamp != self._stamp:
                self._set = self.repository.current()
                self._stamp = stamp
        return self._set
