"""The general detector alone on the fault fleets: no physics, no fault labels, only each
device's own days (`models.anomaly.fleet`), so what data alone can do is visible beside
the profile-aware health model.

Each device's detector starts on its install day. An alarm is *detected* for a faulty
device when it comes on a day that ends after the onset (the detector names no fault
kind: any alarm after the onset counts); any other alarm is a *false* one. The false
alerts are kept per family in a row of their own ("(no fault)"), so the fleet's total
precision counts them.
"""

from __future__ import annotations

import numpy as np

from models.anomaly import DEFAULT, DetectorConfig, StreamingDetector
from models.evaluation.faults import FaultQuality, FaultRun, KindQuality, modelled_kinds
from models.evaluation.filter_life import DAY_S

NO_FAULT = "(no fault)"


def alarm_days(
    run: FaultRun, device_type: str, config: DetectorConfig = DEFAULT
) -> list[list[int]]:
    """Per device of the type, the days (0-based) on which its detector alarmed."""
    days = np.stack(run.daily[device_type])  # days × devices × metrics
    installed = run.installed.get(device_type, np.full(days.shape[1], run.start))
    out: list[list[int]] = []
    for i in range(days.shape[1]):
        det = StreamingDetector(days.shape[2], config=config, watch=run.watched.get(device_type))
        first = max(0, int(np.ceil((installed[i] - run.start) / DAY_S)))
        alarms = []
        for d in range(first, run.days):
            if det.update(run.start + (d + 1) * DAY_S, days[d, i]).alarm:
                alarms.append(d)
        out.append(alarms)
    return out


def general_quality(run: FaultRun, config: DetectorConfig = DEFAULT) -> FaultQuality:
    kinds: list[KindQuality] = []
    healthy_days, healthy_alerts = 0.0, 0
    for t in run.daily:
        table = {k: KindQuality(t, k, 0, 0, 0) for k in modelled_kinds(t)}
        none = KindQuality(t, NO_FAULT, 0, 0, 0)
        installed = run.installed.get(t, np.full(len(run.faults[t]), run.start))
        for i, alarms in enumerate(alarm_days(run, t, config)):
            fault = run.faults[t][i]
            onset_day = (fault[1] - run.start) / DAY_S if fault else float(run.days)
            from_day = max(0.0, (installed[i] - run.start) / DAY_S)
            healthy_days += max(0.0, min(onset_day, run.days) - from_day)
            if fault:
                table[fault[0]].faults += 1
            found = False
            for d in alarms:
                if fault is not None and d + 1 > onset_day:
                    if not found:
                        table[fault[0]].detected += 1
                        table[fault[0]].delays_h.append((d + 1 - onset_day) * 24)
                        found = True
                    continue
                healthy_alerts += 1
                none.false_alerts += 1
        kinds += [*table.values(), none]
    return FaultQuality(kinds, healthy_days, healthy_alerts)
