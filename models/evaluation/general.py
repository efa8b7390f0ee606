"""The general detector alone on the fault fleets: no physics, only each device's own
days and its peers' (`models.anomaly.fleet`), so what data alone can do is visible beside
the profile-aware health model.

Each device's detector starts on its install day. Judged two ways:

* **alone** (`general_quality` without namers): the detector names no fault kind, so an
  alarm on a day that ends after the onset is *detected*; any other alarm is *false*.
  The false alerts are kept per family in a row of their own ("(no fault)"), so the
  fleet's total precision counts them.
* **with the fault namer** (`train_namers` on a training fleet, then `general_quality`
  with them): every alarm of the training fleet is labelled as a technician would
  (the device's fault if it came after the onset, otherwise no fault found) and each
  family's `FaultNamer` learns from those verdicts; on the evaluation fleet an alarm the
  namer dismisses raises nothing, and the others are judged as the health model's are —
  detected only when they name the right fault, false when they name another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.anomaly import DEFAULT, DetectorConfig, StreamingDetector
from models.anomaly.fleet import peer_deviations
from models.anomaly.naming import Evidence, FaultNamer, evidence
from models.evaluation.faults import FaultQuality, FaultRun, KindQuality, modelled_kinds
from models.evaluation.filter_life import DAY_S
from models.verdicts import NONE

NO_FAULT = "(no fault)"


@dataclass(frozen=True, slots=True)
class Alarm:
    day: int  # 0-based day of the run
    evidence: Evidence


def alarms(run: FaultRun, device_type: str, config: DetectorConfig = DEFAULT) -> list[list[Alarm]]:
    """Per device of the type, its detector's alarms and what each showed."""
    days = np.stack(run.daily[device_type])  # days × devices × metrics
    installed = run.installed.get(device_type, np.full(days.shape[1], run.start))
    regions = run.regions.get(device_type, np.zeros(days.shape[1], dtype=object))
    names = [f"m{j}" for j in range(days.shape[2])]
    counters = run.counters.get(device_type, [False] * days.shape[2])
    peers = np.stack([peer_deviations(days[d], regions) for d in range(len(days))])
    out: list[list[Alarm]] = []
    for i in range(days.shape[1]):
        det = StreamingDetector(days.shape[2], config=config, watch=run.watched.get(device_type))
        first = max(0, int(np.ceil((installed[i] - run.start) / DAY_S)))
        found = []
        for d in range(first, run.days):
            row = days[d, i]
            r = det.update(run.start + (d + 1) * DAY_S, row)
            if r.alarm:
                ev = evidence(
                    det, row.tolist(), r, names=names, counters=counters, peers=peers[d, i]
                )
                found.append(Alarm(d, ev))
        out.append(found)
    return out


def _onset_day(run: FaultRun, fault: tuple[str, float] | None) -> float:
    return (fault[1] - run.start) / DAY_S if fault else float(run.days)


def verdicts(
    run: FaultRun, config: DetectorConfig = DEFAULT
) -> dict[str, tuple[list[Evidence], list[str]]]:
    """Per family, every alarm's evidence and what a technician would have found."""
    out: dict[str, tuple[list[Evidence], list[str]]] = {}
    for t in run.daily:
        rows: list[Evidence] = []
        kinds: list[str] = []
        for i, found in enumerate(alarms(run, t, config)):
            fault = run.faults[t][i]
            for a in found:
                rows.append(a.evidence)
                after = fault is not None and a.day + 1 > _onset_day(run, fault)
                kinds.append(fault[0] if after and fault is not None else NONE)
        out[t] = (rows, kinds)
    return out


def train_namers(
    runs: Sequence[FaultRun], config: DetectorConfig = DEFAULT
) -> dict[str, FaultNamer]:
    """Each family's namer, from the verdicts on every alarm of the training fleets."""
    pooled: dict[str, tuple[list[Evidence], list[str]]] = {}
    for run in runs:
        for t, (rows, kinds) in verdicts(run, config).items():
            have = pooled.setdefault(t, ([], []))
            have[0].extend(rows)
            have[1].extend(kinds)
    return {t: FaultNamer().fit(rows, kinds) for t, (rows, kinds) in pooled.items()}


Found = dict[str, list[list[Alarm]]]  # per family, per device: its alarms


def fleet_alarms(run: FaultRun, config: DetectorConfig = DEFAULT) -> Found:
    return {t: alarms(run, t, config) for t in run.daily}


def general_quality(
    run: FaultRun,
    config: DetectorConfig = DEFAULT,
    namers: Mapping[str, FaultNamer] | None = None,
    found: Found | None = None,
) -> FaultQuality:
    """The detector alone (no `namers`: any alarm after the onset is detected), or with
    each family's namer (a dismissed alarm raises nothing; an alarm is detected only when
    it names the device's fault, false otherwise). `found`: the run's alarms, when
    already listed (`fleet_alarms`)."""
    found = found if found is not None else fleet_alarms(run, config)
    kinds: list[KindQuality] = []
    healthy_days, healthy_alerts = 0.0, 0
    for t in run.daily:
        namer = namers.get(t) if namers is not None else None
        naming = namer is not None and namer.fitted
        table = {k: KindQuality(t, k, 0, 0, 0) for k in modelled_kinds(t)}
        none = KindQuality(t, NO_FAULT, 0, 0, 0)
        installed = run.installed.get(t, np.full(len(run.faults[t]), run.start))
        for i, mine in enumerate(found[t]):
            fault = run.faults[t][i]
            onset_day = _onset_day(run, fault)
            from_day = max(0.0, (installed[i] - run.start) / DAY_S)
            healthy_days += max(0.0, min(onset_day, run.days) - from_day)
            if fault:
                table[fault[0]].faults += 1
            names = namer.name_all([a.evidence for a in mine]) if naming and namer else []
            detected = False
            for n, a in enumerate(mine):
                named = names[n] if naming else None
                if named is not None and named.dismissed:
                    continue
                after = fault is not None and a.day + 1 > onset_day
                right = named is None or (fault is not None and named.kind == fault[0])
                if after and right and fault is not None:
                    if not detected:
                        table[fault[0]].detected += 1
                        table[fault[0]].delays_h.append((a.day + 1 - onset_day) * 24)
                        detected = True
                    continue
                if not after:
                    healthy_alerts += 1
                wrong = named.kind if named is not None else NO_FAULT
                if naming and wrong in table:
                    table[wrong].false_alerts += 1
                else:
                    none.false_alerts += 1
        kinds += [*table.values(), none]
    return FaultQuality(kinds, healthy_days, healthy_alerts)
