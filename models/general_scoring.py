"""The general detector in the daily scoring pass: every registered device of every
family with a profile that the health model does not judge (any family a maker imports;
the dehumidifier among the shipped ones), judged from its own data alone
(`models.anomaly.fleet`). The three appliances whose physics the health model knows are
left to it in the pass: there the general detector raises far more false alarms
(docs/model-quality.md), and judging 100,000 of them took the daily pass from 29 to 111
seconds (docs/benchmarks.md); `fleetcare evaluate` still judges them with it.

Per device, each complete UTC day not yet folded becomes one row (a gauge's daily mean,
a counter's daily growth, per numeric metric of the profile) streamed through the
device's `StreamingDetector`, whose packed state is kept in `detector_states`: a restart
carries on where the last pass stopped, and a profile whose metrics changed starts the
device afresh. A device starts learning on its first day with readings (its install), not
before, and again from the day a technician fixed it (a service label "fixed"): the unit
after a repair is not the unit before.

Each day is also compared with the device's peers (the same family in the same
territory, `models.anomaly.fleet.peer_deviations`). An alarm's evidence (what it
showed, `models.anomaly.naming.evidence`) is kept with the state; a technician's verdict
on the job it opened (a confirmed fault, or none found) is stored with that evidence in
`general_labels`, and every pass names its alarms with a `FaultNamer` fitted on its
family's verdicts so far. An alarm the namer is sure is no fault is dismissed (its
score is kept below the threshold): the family's technicians have said what such
alarms turn out to be.

The pass stores, in `model_scores` as model `general`: `score` (the highest score of the
days it folded, 0 to 1; the alarm threshold is 0.5), `metric.<name>` for the metric
that scored it (the same value), so a rule can raise on the score and the console can
show the series that raised it, and `fault.<kind>` (the namer's confidence) when its
alarm was named. Inside an episode the detector caps its score below the threshold, so
one fault raises one alert, which clears the next day.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from db.database import Database
from db.tables import (
    alerts,
    detector_states,
    devices,
    general_labels,
    model_scores,
    service_labels,
)
from db.upsert import upsert
from models.anomaly import DEFAULT, StateError, StreamingDetector
from models.anomaly import fleet as general
from models.anomaly.naming import Evidence, FaultNamer, Named, evidence
from models.daily import from_store
from models.peers import peer_groups
from models.verdicts import verdict_kind
from telemetry.profile import Profile, ProfileSet, shipped
from telemetry.store import TelemetryStore

MODEL = "general"
# the id of the rule that opens a job on this model's alarm (rules.profile_rules
# .general_rule): only a verdict on such a job teaches the namer what an alarm was
RULE_ID = "{}_unusual"
DAY = timedelta(days=1)
THRESHOLD = DEFAULT.threshold


@dataclass
class GeneralReport:
    devices: int = 0
    days_folded: int = 0
    alarms: int = 0
    dismissed: int = 0  # alarms the family's fault namer was sure were no fault
    verdicts: int = 0  # technicians' verdicts stored for the namers


@dataclass
class _Device:
    detector: StreamingDetector
    until: float  # epoch s: the first day not folded yet
    best: float = 0.0
    metric: str = ""
    evidence: Evidence | None = None  # what its last alarm showed
    named: Named | None = None  # what the namer called the alarm that scored `best`


@dataclass(frozen=True, slots=True)
class _Verdict:
    label_id: int
    device_id: str
    outcome: str
    fault: str | None
    at: datetime
    alarmed: bool  # the job was opened by the general detector's alarm


def delete_scores(conn: sa.Connection, model: str, device_ids: Sequence[str]) -> None:
    """Every stored output of `model` for these devices."""
    for i in range(0, len(device_ids), 5000):
        conn.execute(
            model_scores.delete().where(
                model_scores.c.model == model,
                model_scores.c.device_id.in_(list(device_ids[i : i + 5000])),
            )
        )


class GeneralScoring:
    def __init__(
        self,
        db: Database,
        store: TelemetryStore,
        *,
        profiles: ProfileSet | None = None,
        partition: tuple[int, int] = (0, 1),
        catch_up_days: int = 60,
        skip: Collection[str] = (),
    ) -> None:
        """`skip`: families judged otherwise (the scoring pass passes the ones the
        health model knows the physics of)."""
        self.db, self.store = db, store
        self.skip = frozenset(skip)
        self.profiles = profiles if profiles is not None else shipped()
        self.partition = partition
        self.catch_up_days = catch_up_days

    def _devices(self) -> dict[str, list[str]]:
        k, n = self.partition
        out: dict[str, list[str]] = {}
        with self.db.engine.connect() as conn:
            for device_id, device_type in conn.execute(
                sa.select(devices.c.id, devices.c.device_type).order_by(devices.c.id)
            ):
                if (
                    device_type in self.profiles
                    and device_type not in self.skip
                    and zlib.crc32(device_id.encode()) % n == k
                ):
                    out.setdefault(device_type, []).append(device_id)
        return out

    def _load(
        self, ids: list[str], names: list[str], watch: list[bool], earliest: float
    ) -> dict[str, _Device]:
        out: dict[str, _Device] = {}
        ds = detector_states
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                chunk = ids[i : i + 5000]
                for r in conn.execute(sa.select(ds).where(ds.c.device_id.in_(chunk))):
                    if list(r.metrics) != names:
                        continue  # the profile's metrics changed: start afresh
                    try:
                        det = StreamingDetector.from_bytes(r.state)
                    except StateError:
                        continue  # an older state format: start afresh
                    if list(det.watch) != watch:
                        continue  # the profile's sensors changed: start afresh
                    out[r.device_id] = _Device(
                        det, max(r.scored_until.timestamp(), earliest), evidence=r.evidence
                    )
        for d in ids:
            out.setdefault(d, _Device(StreamingDetector(len(names), watch=watch), earliest))
        return out

    async def run(self, now: datetime | None = None) -> GeneralReport:
        now = now or datetime.now(UTC)
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        report = GeneralReport()
        for device_type, ids in self._devices().items():
            await self._run_type(self.profiles[device_type], ids, today, now, report)
        return report

    async def _run_type(
        self,
        profile: Profile,
        ids: list[str],
        today: datetime,
        now: datetime,
        report: GeneralReport,
    ) -> None:
        chosen = general.metrics(profile)
        if not chosen:
            return
        names = [n for n, _ in chosen]
        counters = [c for _, c in chosen]
        watch = general.watched(profile, chosen)
        earliest = (today - self.catch_up_days * DAY).timestamp()
        state = await asyncio.to_thread(self._load, ids, names, watch, earliest)
        namer = await asyncio.to_thread(self._namer, profile.name)
        groups = dict(zip(ids, await asyncio.to_thread(peer_groups, self.db, ids), strict=True))
        labelled: list[dict[str, Any]] = []
        day = datetime.fromtimestamp(min(s.until for s in state.values()), UTC)
        while day < today:
            behind = [d for d in ids if state[d].until <= day.timestamp()]
            if behind:
                stats = await from_store(
                    self.store,
                    profile.name,
                    behind,
                    int(day.timestamp() * 1000),
                    int((day + DAY).timestamp() * 1000),
                    (general.query(chosen),),
                )
                rows = general.features(stats, chosen)
                peers = general.peer_deviations(rows, np.array([groups[d] for d in behind]))
                end = (day + DAY).timestamp()
                found = await asyncio.to_thread(self._verdicts, behind, day)
                for v in found:
                    row = _label_row(profile.name, v, state[v.device_id].evidence)
                    if row is not None:
                        labelled.append(row)
                repaired = {v.device_id for v in found if v.outcome == "fixed"}
                for i, d in enumerate(behind):
                    s = state[d]
                    s.until = end
                    if d in repaired:  # fixed: what it learned was the unit before the repair
                        s.detector = StreamingDetector(len(names), watch=watch)
                        s.best, s.metric, s.evidence, s.named = 0.0, "", None, None
                    if s.detector.rows == 0 and np.isnan(rows[i]).all():
                        continue  # not installed (or never heard from) yet
                    values = rows[i].tolist()
                    r = s.detector.update(end, values)
                    score, named = r.score, None
                    if r.alarm:
                        report.alarms += 1
                        s.evidence = evidence(
                            s.detector, values, r, names=names, counters=counters, peers=peers[i]
                        )
                        named = namer.name(s.evidence)
                        if named is not None and named.dismissed:
                            report.dismissed += 1
                            score = min(score, THRESHOLD * 0.5)
                    if score > s.best:
                        s.best, s.named = score, named
                        s.metric = names[r.channel] if r.channel >= 0 else ""
                report.days_folded += 1
            day += DAY
        await asyncio.to_thread(self._save, profile.name, names, state, now, labelled)
        report.devices += len(ids)
        report.verdicts += len(labelled)

    def _namer(self, device_type: str) -> FaultNamer:
        """The family's fault namer, fitted on every verdict its technicians gave on the
        general detector's alarms so far (unfitted, it names nothing)."""
        gl = general_labels
        with self.db.engine.connect() as conn:
            found = conn.execute(
                sa.select(gl.c.evidence, gl.c.kind)
                .where(gl.c.device_type == device_type)
                .order_by(gl.c.id)
            ).all()
        return FaultNamer().fit([dict(r.evidence) for r in found], [r.kind for r in found])

    def _verdicts(self, device_ids: list[str], day: datetime) -> list[_Verdict]:
        """Technicians' verdicts given during `day` on these devices and not stored for
        the namer yet. A fixed device's baseline starts again: what it learned was the
        unit before the repair."""
        sl = service_labels
        out: list[_Verdict] = []
        with self.db.engine.connect() as conn:
            for i in range(0, len(device_ids), 5000):
                out += [
                    _Verdict(r.id, r.device_id, r.outcome, r.confirmed_fault, r.at, r.alarmed)
                    for r in conn.execute(
                        sa.select(
                            sl.c.id, sl.c.device_id, sl.c.outcome, sl.c.confirmed_fault, sl.c.at
                        )
                        .where(
                            sl.c.at >= day,
                            sl.c.at < day + DAY,
                            sl.c.device_id.in_(device_ids[i : i + 5000]),
                        )
                        .where(~sa.exists().where(general_labels.c.service_label_id == sl.c.id))
                        .add_columns(self._raised_by_alarm(sl.c.order_id, sl.c.device_type))
                        .order_by(sl.c.id)
                    )
                ]
        return out

    @staticmethod
    def _raised_by_alarm(order_id: Any, device_type: Any) -> Any:
        """Whether the verdict's job was opened by the general detector's alarm."""
        return (
            sa.exists()
            .where(
                alerts.c.work_order_id == order_id,
                alerts.c.rule_id == sa.func.replace(sa.literal(RULE_ID), "{}", device_type),
            )
            .label("alarmed")
        )

    def _save(
        self,
        device_type: str,
        names: list[str],
        state: dict[str, _Device],
        now: datetime,
        labelled: list[dict[str, Any]],
    ) -> None:
        rows: list[dict[str, Any]] = [
            {
                "device_id": d,
                "device_type": device_type,
                "metrics": names,
                "scored_until": datetime.fromtimestamp(s.until, UTC),
                "state": s.detector.to_bytes(),
                "evidence": s.evidence,
            }
            for d, s in state.items()
        ]
        scores: list[dict[str, Any]] = []
        for d, s in state.items():
            if s.detector.rows == 0:
                continue
            outputs = {"score": s.best}
            if s.metric:
                outputs[f"metric.{s.metric}"] = s.best
            if s.named is not None and not s.named.dismissed:
                outputs[f"fault.{s.named.kind}"] = s.named.confidence
            scores += [
                {
                    "device_id": d,
                    "model": MODEL,
                    "output": output,
                    "value": round(value, 4),
                    "threshold": THRESHOLD,
                    "model_version": "general-1",
                    "updated_at": now,
                }
                for output, value in outputs.items()
            ]
        with self.db.engine.begin() as conn:
            upsert(
                conn,
                detector_states,
                rows,
                keys=["device_id"],
                update=["device_type", "metrics", "scored_until", "state", "evidence"],
            )
            if labelled:
                conn.execute(general_labels.insert(), labelled)
            # this pass's verdict replaces the last one (a metric named then may not be now)
            delete_scores(conn, MODEL, list(state))
            if scores:
                conn.execute(model_scores.insert(), scores)


def _label_row(device_type: str, v: _Verdict, shown: Evidence | None) -> dict[str, Any] | None:
    """A verdict as a training row for the namer: a confirmed fault or none found, on a
    device whose alarm's evidence is known (a follow-up says neither; a job the general
    detector did not raise has no evidence of it)."""
    kind = verdict_kind(v.outcome, v.fault)
    if kind is None or shown is None or not v.alarmed:
        return None
    return {
        "service_label_id": v.label_id,
        "device_id": v.device_id,
        "device_type": device_type,
        "at": v.at,
        "evidence": shown,
        "kind": kind,
    }
