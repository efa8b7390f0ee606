"""The daily scoring pass: store → wear and health state → models → predictions, scores.

For each device type, the devices of the registry (this replica's partition) are brought
up to the last complete UTC day: each missing day is read from the store with a few
aggregate queries for the whole fleet (`models.daily.from_store`), folded into the wear
state (`models.wear.advance`), and the active filter-life version predicts every stage.
Predictions go to `filter_predictions` (date, band, consumed share, the rated-life date,
model version), which the rules, the parts forecast and the API read; the state goes to
`wear_states`, so a restart carries on where the last pass stopped.

With a health model, each folded day is also judged against every device's own
baselines (`models.health`, whose state rides in the same `wear_states` row), and the
latest verdict goes to `model_scores` as model `anomaly`: `score` (1 = the learned
threshold) and one output per fault kind (the score where the classifier names that
kind, else 0), which the rules' `prediction` conditions read.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from db.database import Database
from db.tables import (
    devices,
    filter_labels,
    filter_replacements,
    health_labels,
    model_scores,
    service_labels,
    wear_states,
)
from db.upsert import upsert
from fleet.predictions import TYPICAL_USE, PredictedExhaustion, Predictions
from models import consumables
from models.consumables import ConsumableState
from models.daily import from_store
from models.filter_life import FilterLife, Snapshots
from models.general_scoring import GeneralScoring, delete_scores
from models.health import RELATIONS, FieldLabels, HealthModel, HealthScores, observe
from models.health import features as health_features
from models.peers import peer_groups
from models.verdicts import NONE, verdict_kind
from models.wear import STAGES, WearState, advance, snapshot
from telemetry.profile import Profile, ProfileSet, shipped
from telemetry.store import TelemetryStore

DAY = timedelta(days=1)
MAX_CATCH_UP_DAYS = 60  # a new or long-idle scorer folds in at most this much history


@dataclass
class ScoringReport:
    devices: int = 0
    days_folded: int = 0
    predictions: int = 0
    scores: int = 0  # devices with a health verdict
    anomalous: int = 0  # of them at or over the threshold
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    general_devices: int = 0  # judged by the general detector
    general_alarms: int = 0
    general_dismissed: int = 0  # of them, what the family's namer was sure was nothing
    general_verdicts: int = 0  # technicians' verdicts stored for the namers


def _day_floor(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class FilterLifeScoring:
    def __init__(
        self,
        db: Database,
        store: TelemetryStore,
        model: FilterLife,
        version: str,
        *,
        partition: tuple[int, int] = (0, 1),
        catch_up_days: int = MAX_CATCH_UP_DAYS,
        health: HealthModel | None = None,
        health_version: str | None = None,
        profiles: ProfileSet | None = None,
        general: bool = True,
    ) -> None:
        """`profiles`: the families to score (default: the shipped ones); one without a
        filter-life model of its own is scored from its profile (`models.consumables`).
        `general`: also run the general detector (`GeneralScoring`) on the families the
        health model does not know."""
        self.profiles = profiles if profiles is not None else shipped()
        self.general = (
            GeneralScoring(
                db,
                store,
                profiles=self.profiles,
                partition=partition,
                catch_up_days=catch_up_days,
                skip=RELATIONS,  # the families whose physics the health model judges
            )
            if general
            else None
        )
        self.db, self.store, self.model, self.version = db, store, model, version
        self.partition = partition
        self.catch_up_days = catch_up_days
        self.health, self.health_version = health, health_version

    def _devices(self) -> dict[str, list[str]]:
        """This partition's devices of the families with consumables, by type."""
        k, n = self.partition
        scored = set(STAGES) | {name for name, p in self.profiles.items() if p.doc.consumables}
        out: dict[str, list[str]] = {}
        with self.db.engine.connect() as conn:
            for device_id, device_type in conn.execute(
                sa.select(devices.c.id, devices.c.device_type).order_by(devices.c.id)
            ):
                if device_type in scored and zlib.crc32(device_id.encode()) % n == k:
                    out.setdefault(device_type, []).append(device_id)
        return out

    def _window(
        self,
        ids: Sequence[str],
        saved: dict[str, tuple[datetime, dict[str, float]]],
        today: datetime,
    ) -> tuple[np.ndarray, datetime]:
        """Each device's first day still to fold (at most `catch_up_days` back), and the
        earliest of them."""
        until = np.array([saved[d][0].timestamp() if d in saved else np.nan for d in ids])
        earliest = (today - self.catch_up_days * DAY).timestamp()
        until = np.where(np.isnan(until), earliest, np.maximum(until, earliest))
        return until, datetime.fromtimestamp(float(until.min()), UTC)

    async def _consumables(
        self,
        profile: Profile,
        ids: list[str],
        today: datetime,
        now: datetime,
        report: ScoringReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        """A family without a model of its own: its consumables from their drivers
        (`models.consumables`), each device at its own rate."""
        saved = self._load(ids)
        state = ConsumableState.from_rows(profile.name, ids, {d: s for d, (_, s) in saved.items()})
        until, day = self._window(ids, saved, today)
        qs = consumables.queries(profile)
        while day < today:
            behind = until <= day.timestamp()
            if behind.any():
                index = np.flatnonzero(behind)
                part = state.take(index)
                stats = await from_store(
                    self.store,
                    profile.name,
                    part.device_ids,
                    int(day.timestamp() * 1000),
                    int((day + DAY).timestamp() * 1000),
                    qs,
                )
                await asyncio.to_thread(self._replaced, profile, part, day)
                consumables.fold(profile, part, stats)
                for k, v in part.values.items():
                    state[k][index] = v
                until[index] = (day + DAY).timestamp()
                report.days_folded += 1
                if progress:
                    progress(1)
            day += DAY
        rows = self._consumable_predictions(profile, state)
        await asyncio.to_thread(Predictions(self.db).record, rows, now=now)
        await asyncio.to_thread(self._save, state, until)
        report.devices += len(ids)
        report.predictions += len(rows)
        report.by_type[profile.name] = len(rows)

    def _replaced(self, profile: Profile, state: ConsumableState, day: datetime) -> None:
        """Replacements the service loop recorded during `day` restart those stages."""
        fr = filter_replacements
        index = {d: i for i, d in enumerate(state.device_ids)}
        with self.db.engine.connect() as conn:
            found = conn.execute(
                sa.select(fr.c.device_id, fr.c.stage, fr.c.at).where(
                    fr.c.at >= day, fr.c.at < day + DAY, fr.c.device_id.in_(state.device_ids)
                )
            ).all()
        for r in found:
            if r.device_id in index and profile.consumable(r.stage) is not None:
                mask = np.zeros(len(state.device_ids), dtype=bool)
                mask[index[r.device_id]] = True
                consumables.restart(state, r.stage, mask, r.at.timestamp())

    def _consumable_predictions(
        self, profile: Profile, state: ConsumableState
    ) -> list[PredictedExhaustion]:
        out = []
        asof = state["c.asof"]
        for p in consumables.predict(profile, state):
            for i, device_id in enumerate(p.device_ids):
                if not (np.isfinite(p.days_left[i]) and np.isfinite(asof[i])):
                    continue
                base = datetime.fromtimestamp(float(asof[i]), UTC)
                typical = p.typical_use is not None and bool(p.typical_use[i])
                out.append(
                    PredictedExhaustion(
                        device_id=device_id,
                        stage=p.stage,
                        exhausted_at=base + timedelta(days=float(p.days_left[i])),
                        # a reminder from the fleet's typical use, not this unit's data
                        source=TYPICAL_USE if typical else "consumables",
                        low=base + timedelta(days=float(p.low[i])),
                        high=base + timedelta(days=float(p.high[i])),
                        consumed=round(float(p.consumed[i]), 4),
                        rated_at=base + timedelta(days=float(p.rated_days_left[i])),
                        model_version=consumables.VERSION,
                    )
                )
        return out

    def _load(self, device_ids: Sequence[str]) -> dict[str, tuple[datetime, dict[str, float]]]:
        out = {}
        with self.db.engine.connect() as conn:
            for i in range(0, len(device_ids), 5000):
                chunk = list(device_ids[i : i + 5000])
                for row in conn.execute(
                    sa.select(wear_states).where(wear_states.c.device_id.in_(chunk))
                ):
                    out[row.device_id] = (row.scored_until, dict(row.state))
        return out

    async def run(
        self, now: datetime | None = None, progress: Callable[[int], None] | None = None
    ) -> ScoringReport:
        began = time.perf_counter()
        now = now or datetime.now(UTC)
        today = _day_floor(now)  # days before this one are complete
        report = ScoringReport()
        for device_type, ids in self._devices().items():
            if device_type not in STAGES:  # no model of its own: its profile's drivers
                profile = self.profiles[device_type]
                await self._consumables(profile, ids, today, now, report, progress)
                continue
            saved = self._load(ids)
            state = WearState.from_rows(device_type, ids, {d: s for d, (_, s) in saved.items()})
            until, day = self._window(ids, saved, today)
            judged = self.health is not None and device_type in self.health.types
            groups = await asyncio.to_thread(peer_groups, self.db, ids) if judged else None
            verdicts: list[HealthScores] = []
            restarted: set[str] = set()
            while day < today:
                behind = until <= day.timestamp()
                if behind.any():
                    index = np.flatnonzero(behind)
                    part = state.take(index)
                    stats = await from_store(
                        self.store,
                        device_type,
                        part.device_ids,
                        int(day.timestamp() * 1000),
                        int((day + DAY).timestamp() * 1000),
                    )
                    await asyncio.to_thread(self._label, part, day)
                    if judged:
                        await asyncio.to_thread(self._health_label, part, day)
                    changed = advance(part, stats)
                    if judged and self.health is not None and groups is not None:
                        day_health = observe(stats, groups[index], changed)
                        verdicts.append(self.health.score(device_type, part, day_health))
                        restarted.update(part.device_ids[i] for i in np.flatnonzero(changed))
                    for k, v in part.values.items():
                        state[k][index] = v
                    until[index] = (day + DAY).timestamp()
                    report.days_folded += 1
                    if progress:
                        progress(1)
                day += DAY
            rows = self._predictions(state)
            await asyncio.to_thread(Predictions(self.db).record, rows, now=now)
            await asyncio.to_thread(self._save, state, until)
            if judged and self.health is not None:
                latest = _latest(verdicts)
                kinds = self.health.kinds(device_type)
                await asyncio.to_thread(self._save_scores, latest.outputs(kinds), now)
                # a baseline forming again (a new filter): the old verdict no longer holds
                last_finite = {
                    d: bool(np.isfinite(x))
                    for v in verdicts
                    for d, x in zip(v.device_ids, v.score, strict=True)
                }
                forming = sorted(d for d in restarted if not last_finite.get(d, False))
                await asyncio.to_thread(self._clear_scores, forming)
                finite = np.isfinite(latest.score)
                report.scores += int(finite.sum())
                report.anomalous += int((latest.score[finite] >= 1.0).sum())
            report.devices += len(ids)
            report.predictions += len(rows)
            report.by_type[device_type] = len(rows)
        if self.general is not None:
            self.general.profiles = self.profiles  # a family imported since is judged too
            judged_alone = await self.general.run(now)
            report.general_devices = judged_alone.devices
            report.general_alarms = judged_alone.alarms
            report.general_dismissed = judged_alone.dismissed
            report.general_verdicts = judged_alone.verdicts
        report.seconds = time.perf_counter() - began
        return report

    def _predictions(self, state: WearState) -> list[PredictedExhaustion]:
        out = []
        for p in self.model.predict(state):
            asof = state["asof"]
            for i, device_id in enumerate(p.device_ids):
                left = p.days_left[i]
                if not (np.isfinite(left) and np.isfinite(asof[i])):
                    continue
                base = datetime.fromtimestamp(float(asof[i]), UTC)

                def at(days: float, base: datetime = base) -> datetime | None:
                    return (
                        base + timedelta(days=float(np.clip(days, -3650, 3650)))
                        if np.isfinite(days)
                        else None
                    )

                out.append(
                    PredictedExhaustion(
                        device_id=device_id,
                        stage=p.stage,
                        exhausted_at=base + timedelta(days=float(np.clip(left, -3650, 3650))),
                        source="filter_life",
                        low=at(p.low[i]),
                        high=at(p.high[i]),
                        consumed=round(float(p.consumed[i]), 4)
                        if np.isfinite(p.consumed[i])
                        else None,
                        rated_at=at(p.rated_days_left[i]),
                        model_version=self.version,
                    )
                )
        return out

    def _clear_scores(self, device_ids: Sequence[str]) -> None:
        with self.db.engine.begin() as conn:
            delete_scores(conn, "anomaly", device_ids)

    def _save_scores(self, outputs: dict[str, dict[str, float]], now: datetime) -> None:
        rows = [
            {
                "device_id": device_id,
                "model": "anomaly",
                "output": output,
                "value": value,
                "threshold": 1.0,
                "model_version": self.health_version,
                "updated_at": now,
            }
            for device_id, row in outputs.items()
            for output, value in row.items()
        ]
        with self.db.engine.begin() as conn:
            upsert(
                conn,
                model_scores,
                rows,
                keys=["device_id", "model", "output"],
                update=["value", "threshold", "model_version", "updated_at"],
            )

    def _label(self, state: WearState, day: datetime) -> None:
        """Filters replaced during `day` with the state they were found in: their wear
        features as of the day before (the old filter's) become training labels."""
        fr = filter_replacements
        index = {d: i for i, d in enumerate(state.device_ids)}
        with self.db.engine.begin() as conn:
            found = conn.execute(
                sa.select(fr.c.id, fr.c.device_id, fr.c.stage, fr.c.at, fr.c.consumed_found)
                .where(fr.c.at >= day, fr.c.at < day + DAY, fr.c.consumed_found.is_not(None))
                .where(~sa.exists().where(filter_labels.c.replacement_id == fr.c.id))
            ).all()
            rows = [
                {
                    "replacement_id": r.id,
                    "device_id": r.device_id,
                    "device_type": state.device_type,
                    "stage": r.stage,
                    "at": r.at,
                    "features": snapshot(state, r.stage, index[r.device_id]),
                    "consumed": r.consumed_found,
                }
                for r in found
                if r.device_id in index and r.stage in STAGES[state.device_type]
            ]
            if rows:
                conn.execute(filter_labels.insert(), rows)

    def _health_label(self, state: WearState, day: datetime) -> None:
        """Technicians' verdicts given during `day` (a confirmed fault the model knows,
        or none found), with the device's deviations as of its last verdict: the ones
        that raised the job. Stored once each, for the next training."""
        assert self.health is not None
        sl = service_labels
        known = set(self.health.kinds(state.device_type))
        names = health_features(state.device_type)
        index = {d: i for i, d in enumerate(state.device_ids)}
        with self.db.engine.begin() as conn:
            found = conn.execute(
                sa.select(sl.c.id, sl.c.device_id, sl.c.outcome, sl.c.confirmed_fault, sl.c.at)
                .where(sl.c.at >= day, sl.c.at < day + DAY)
                .where(~sa.exists().where(health_labels.c.service_label_id == sl.c.id))
            ).all()
            rows = []
            for r in found:
                i = index.get(r.device_id)
                kind = verdict_kind(r.outcome, r.confirmed_fault)
                if i is None or kind is None or (kind != NONE and kind not in known):
                    continue  # not this type's, a follow-up, or a fault the model cannot learn
                z = {n: float(state[f"h.last.{n}"][i]) for n in names}
                if not any(np.isfinite(v) for v in z.values()):
                    continue  # never judged: nothing to learn from
                rows.append(
                    {
                        "service_label_id": r.id,
                        "device_id": r.device_id,
                        "device_type": state.device_type,
                        "at": r.at,
                        "deviations": {n: v for n, v in z.items() if np.isfinite(v)},
                        "kind": kind,
                    }
                )
            if rows:
                conn.execute(health_labels.insert(), rows)

    def _save(self, state: WearState | ConsumableState, until: np.ndarray) -> None:
        rows: list[dict[str, Any]] = []
        values = state.rows()
        for i, device_id in enumerate(state.device_ids):
            if device_id not in values:
                continue
            rows.append(
                {
                    "device_id": device_id,
                    "device_type": state.device_type,
                    "scored_until": datetime.fromtimestamp(float(until[i]), UTC),
                    "state": values[device_id],
                }
            )
        with self.db.engine.begin() as conn:
            upsert(conn, wear_states, rows, keys=["device_id"], update=["scored_until", "state"])


def load_labels(db: Database) -> dict[tuple[str, str], Snapshots]:
    """Every field label, as training rows per device type and stage."""
    by_key: dict[tuple[str, str], list[tuple[dict[str, float | None], float]]] = {}
    with db.engine.connect() as conn:
        for r in conn.execute(sa.select(filter_labels).order_by(filter_labels.c.id)):
            by_key.setdefault((r.device_type, r.stage), []).append((dict(r.features), r.consumed))
    return {key: Snapshots.from_labels(key, rows) for key, rows in by_key.items()}


def _latest(verdicts: Sequence[HealthScores]) -> HealthScores:
    """Each device's most recent verdict over the folded days (devices catch up at
    different paces, so a day may judge only some of them)."""
    ids: dict[str, int] = {}
    for v in verdicts:
        for d in v.device_ids:
            ids.setdefault(d, len(ids))
    n = len(ids)
    out = HealthScores(
        list(ids),
        np.full(n, np.nan),
        np.full((n, 0), np.nan),
        np.full(n, "none", dtype=object),
        np.zeros(n),
    )
    for v in verdicts:
        at = np.array([ids[d] for d in v.device_ids], dtype=int)
        seen = np.isfinite(v.score)
        out.score[at[seen]] = v.score[seen]
        out.kind[at[seen]] = v.kind[seen]
        out.confidence[at[seen]] = v.confidence[seen]
    return out


def load_health_labels(db: Database) -> dict[str, FieldLabels]:
    """Every technician's verdict captured by the scoring pass, per device type."""
    by_type: dict[str, list[tuple[dict[str, float], str]]] = {}
    with db.engine.connect() as conn:
        for r in conn.execute(sa.select(health_labels).order_by(health_labels.c.id)):
            by_type.setdefault(r.device_type, []).append((dict(r.deviations), r.kind))
    out = {}
    for device_type, rows in by_type.items():
        names = health_features(device_type)
        X = np.array([[z.get(n, np.nan) for n in names] for z, _ in rows], dtype=np.float64)
        out[device_type] = FieldLabels(X, np.array([k for _, k in rows], dtype=object))
    return out
