"""Alerts, their history, silences, and the rules evaluator's memory: the tables `rules`
reads and writes through this interface (no SQL outside this room).

* One firing alert per rule and device, by a partial unique index: `fire` inserts in a
  savepoint and the loser of a race gets the winner's alert (`created=False`).
* Every change is an `alert_events` row with its data: the history the console shows.
* A silence mutes alerts matching all its matchers (rule, device, customer) between its
  start and end: they still fire and are kept, but open no work order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import DomainError, NotFound
from db.tables import alert_events, alerts, device_sites, rule_states, silences
from db.upsert import upsert


class SilenceRefused(DomainError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAlert:
    rule_id: str
    device_id: str
    device_type: str
    severity: str
    problem_kind: str | None
    title: str
    pending_since: datetime | None
    fired_at: datetime
    value: float | None
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule_id: str
    device_id: str
    device_type: str
    customer_id: str | None
    severity: str
    problem_kind: str | None
    title: str
    state: str
    pending_since: datetime | None
    fired_at: datetime
    resolved_at: datetime | None
    value: float | None
    evidence: dict[str, Any]
    silenced_by: int | None
    inhibited_by: str | None
    work_order_id: int | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Alert:
        return cls(**dict(row._mapping))


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    rule_id: str | None
    device_id: str | None
    customer_id: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the evaluator's memory --------------------------------------------------------
    def load_states(
        self, device_ids: Collection[str], rule_ids: Collection[str] | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """(rule, device) -> saved state, of these devices (and only of `rule_ids`)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                q = sa.select(rule_states).where(rule_states.c.device_id.in_(ids[i : i + 5000]))
                if rule_ids is not None:
                    q = q.where(rule_states.c.rule_id.in_(list(rule_ids)))
                for r in conn.execute(q):
                    out[(r.rule_id, r.device_id)] = dict(r._mapping)
        return out

    def save_states(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        with self.db.engine.begin() as conn:
            keys = [c.name for c in rule_states.c if c.name not in ("rule_id", "device_id")]
            upsert(conn, rule_states, rows, keys=["rule_id", "device_id"], update=keys, chunk=2000)

    def firing_for(self, device_ids: Collection[str]) -> dict[tuple[str, str], datetime]:
        """(rule, device) -> fired at, of the alerts firing on these devices."""
        out: dict[tuple[str, str], datetime] = {}
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                q = sa.select(alerts.c.rule_id, alerts.c.device_id, alerts.c.fired_at).where(
                    alerts.c.state == "firing", alerts.c.device_id.in_(ids[i : i + 5000])
                )
                out.update({(r.rule_id, r.device_id): r.fired_at for r in conn.execute(q)})
        return out

    def last_resolved(
        self, device_ids: Collection[str], rule_ids: Collection[str] | None = None
    ) -> dict[tuple[str, str], datetime]:
        """(rule, device) -> when its latest alert was resolved, for these devices (and
        only for `rule_ids`)."""
        out: dict[tuple[str, str], datetime] = {}
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                q = (
                    sa.select(
                        alerts.c.rule_id, alerts.c.device_id, sa.func.max(alerts.c.resolved_at)
                    )
                    .where(alerts.c.state == "resolved", alerts.c.device_id.in_(ids[i : i + 5000]))
                    .group_by(alerts.c.rule_id, alerts.c.device_id)
                )
                if rule_ids is not None:
                    q = q.where(alerts.c.rule_id.in_(list(rule_ids)))
                for rule_id, device_id, at in conn.execute(q):
                    if at is not None:  # SQLite's aggregate drops the zone: it is UTC
                        out[(rule_id, device_id)] = at if at.tzinfo else at.replace(tzinfo=UTC)
        return out

    def firing_without_job(self, device_ids: Collection[str]) -> list[Alert]:
        """Firing alerts of these devices that have no work order (silenced, or the
        device was not in the service registry when they fired)."""
        out: list[Alert] = []
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                q = sa.select(alerts).where(
                    alerts.c.state == "firing",
                    alerts.c.work_order_id.is_(None),
                    alerts.c.device_id.in_(ids[i : i + 5000]),
                )
                out += [Alert.from_row(r) for r in conn.execute(q)]
        return out

    # -- alerts ------------------------------------------------------------------------
    def fire(self, new: NewAlert) -> tuple[Alert, bool]:
        """Open the firing alert for this rule and device, or return the one already
        firing (`created=False`): idempotent, and race-safe across evaluators."""
        with self.db.engine.begin() as conn:
            existing = self._firing(conn, new.rule_id, new.device_id)
            if existing is not None:
                return existing, False
            customer = conn.execute(
                sa.select(device_sites.c.customer_id).where(
                    device_sites.c.device_id == new.device_id
                )
            ).scalar_one_or_none()
            silence = self.matching_silence(
                conn, new.rule_id, new.device_id, customer, new.fired_at
            )
            try:
                with conn.begin_nested():
                    alert_id = conn.execute(
                        alerts.insert()
                        .values(
                            rule_id=new.rule_id,
                            device_id=new.device_id,
                            device_type=new.device_type,
                            customer_id=customer,
                            severity=new.severity,
                            problem_kind=new.problem_kind,
                            title=new.title,
                            state="firing",
                            pending_since=new.pending_since,
                            fired_at=new.fired_at,
                            value=new.value,
                            evidence=new.evidence,
                            silenced_by=silence,
                            updated_at=new.fired_at,
                        )
                        .returning(alerts.c.id)
                    ).scalar_one()
            except sa.exc.IntegrityError:
                existing = self._firing(conn, new.rule_id, new.device_id)
                if existing is None:
                    raise
                return existing, False
            self._event(conn, alert_id, new.fired_at, "fired", {**new.evidence, "value": new.value})
            if silence is not None:
                self._event(conn, alert_id, new.fired_at, "silenced", {"silence": silence})
            return self._get(conn, alert_id), True

    def resolve(
        self, rule_id: str, device_id: str, now: datetime, evidence: dict[str, Any]
    ) -> Alert | None:
        with self.db.engine.begin() as conn:
            firing = self._firing(conn, rule_id, device_id)
            if firing is None:
                return None
            conn.execute(
                alerts.update()
                .where(alerts.c.id == firing.id, alerts.c.state == "firing")
                .values(state="resolved", resolved_at=now, updated_at=now)
            )
            self._event(conn, firing.id, now, "resolved", evidence)
            return self._get(conn, firing.id)

    def annotate(
        self,
        alert_id: int,
        now: datetime,
        *,
        work_order_id: int | None = None,
        inhibited_by: str | None = None,
    ) -> Alert:
        """Record the work order an alert opened (or joined), or why it is inhibited."""
        values: dict[str, Any] = {"updated_at": now}
        if work_order_id is not None:
            values["work_order_id"] = work_order_id
        if inhibited_by is not None:
            values["inhibited_by"] = inhibited_by
        with self.db.engine.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(**values))
            if work_order_id is not None:
                self._event(conn, alert_id, now, "work_order", {"order": work_order_id})
            if inhibited_by is not None:
                self._event(conn, alert_id, now, "inhibited", {"why": inhibited_by})
            return self._get(conn, alert_id)

    def get(self, alert_id: int) -> Alert:
        with self.db.engine.connect() as conn:
            return self._get(conn, alert_id)

    def find(
        self,
        *,
        state: str | None = None,
        device_id: str | None = None,
        rule_id: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        q = sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        for col, value in (
            (alerts.c.state, state),
            (alerts.c.device_id, device_id),
            (alerts.c.rule_id, rule_id),
        ):
            if value is not None:
                q = q.where(col == value)
        with self.db.engine.connect() as conn:
            return [Alert.from_row(r) for r in conn.execute(q)]

    def history(self, alert_id: int) -> list[dict[str, Any]]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(alert_events.c.at, alert_events.c.kind, alert_events.c.data)
                .where(alert_events.c.alert_id == alert_id)
                .order_by(alert_events.c.id)
            )
            return [dict(r._mapping) for r in rows]

    @staticmethod
    def _firing(conn: Connection, rule_id: str, device_id: str) -> Alert | None:
        row = conn.execute(
            sa.select(alerts).where(
                alerts.c.rule_id == rule_id,
                alerts.c.device_id == device_id,
                alerts.c.state == "firing",
            )
        ).first()
        return Alert.from_row(row) if row else None

    @staticmethod
    def _get(conn: Connection, alert_id: int) -> Alert:
        row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound("alert", alert_id)
        return Alert.from_row(row)

    @staticmethod
    def _event(
        conn: Connection, alert_id: int, at: datetime, kind: str, data: dict[str, Any]
    ) -> None:
        conn.execute(alert_events.insert().values(alert_id=alert_id, at=at, kind=kind, data=data))

    # -- silences ----------------------------------------------------------------------
    def add_silence(
        self,
        *,
        ends_at: datetime,
        created_by: str,
        comment: str,
        rule_id: str | None = None,
        device_id: str | None = None,
        customer_id: str | None = None,
        starts_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Silence:
        now = now or datetime.now(UTC)
        starts_at = starts_at or now
        if rule_id is None and device_id is None and customer_id is None:
            raise SilenceRefused("a silence needs a rule, a device or a customer to match")
        if ends_at <= starts_at:
            raise SilenceRefused(f"the silence ends ({ends_at}) before it starts ({starts_at})")
        if not comment.strip():
            raise SilenceRefused("say why in the comment: the next person on shift will ask")
        with self.db.engine.begin() as conn:
            silence_id = conn.execute(
                silences.insert()
                .values(
                    rule_id=rule_id,
                    device_id=device_id,
                    customer_id=customer_id,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=created_by,
                    comment=comment,
                    created_at=now,
                )
                .returning(silences.c.id)
            ).scalar_one()
            row = conn.execute(sa.select(silences).where(silences.c.id == silence_id)).one()
            return Silence(**dict(row._mapping))

    def expire_silence(self, silence_id: int, now: datetime | None = None) -> None:
        """End a silence now (one that has not started yet is removed)."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            row = conn.execute(
                sa.select(silences.c.starts_at).where(
                    silences.c.id == silence_id, silences.c.ends_at > now
                )
            ).first()
            if row is None:
                raise NotFound("active silence", silence_id)
            where = silences.c.id == silence_id
            if row.starts_at >= now:
                conn.execute(silences.delete().where(where))
            else:
                conn.execute(silences.update().where(where).values(ends_at=now))

    def list_silences(
        self, now: datetime | None = None, *, include_expired: bool = False
    ) -> list[Silence]:
        now = now or datetime.now(UTC)
        q = sa.select(silences).order_by(silences.c.id)
        if not include_expired:
            q = q.where(silences.c.ends_at > now)
        with self.db.engine.connect() as conn:
            return [Silence(**dict(r._mapping)) for r in conn.execute(q)]

    @staticmethod
    def matching_silence(
        conn: Connection,
        rule_id: str,
        device_id: str,
        customer_id: str | None,
        now: datetime,
    ) -> int | None:
        s = silences.c
        row = conn.execute(
            sa.select(s.id)
            .where(
                s.starts_at <= now,
                s.ends_at > now,
                sa.or_(s.rule_id.is_(None), s.rule_id == rule_id),
                sa.or_(s.device_id.is_(None), s.device_id == device_id),
                sa.or_(s.customer_id.is_(None), s.customer_id == customer_id),
            )
            .order_by(s.id)
            .limit(1)
        ).first()
        return int(row.id) if row else None

    def silenced(self, rule_id: str, device_id: str, now: datetime) -> int | None:
        with self.db.engine.connect() as conn:
            customer = conn.execute(
                sa.select(device_sites.c.customer_id).where(device_sites.c.device_id == device_id)
            ).scalar_one_or_none()
            return self.matching_silence(conn, rule_id, device_id, customer, now)
