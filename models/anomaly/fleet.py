"""Health from data alone, for any profile: each device's day reduced to one number per
numeric metric its profile declares (a gauge's daily mean, a counter's daily growth),
and the device's days streamed through its own `StreamingDetector`, which learns that
unit's baseline from its install on and the relations between its metrics. Nothing here
knows what the metrics mean: a new product category gets health from its data."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray

from models.daily import DayStats, Query
from telemetry.profile import Profile

QUERY = "generic"


Metrics = list[tuple[str, bool]]


def metrics(profile: Profile, reported: Collection[str] | None = None) -> Metrics:
    """(name, is a counter) for each numeric metric the profile declares (and, given
    `reported`, the devices report: a metric a later firmware adds may be absent)."""
    return [
        (m.name, m.counter)
        for m in profile.doc.metrics
        if m.kind in ("float", "int") and (reported is None or m.name in reported)
    ]


def query(chosen: Metrics) -> Query:
    """The day's query: every chosen metric, no filter."""
    return Query(QUERY, tuple(name for name, _ in chosen))


def features(stats: DayStats, chosen: Metrics) -> NDArray[np.float64]:
    """devices × metrics: a gauge's mean, a counter's growth over the day (its max minus
    its min: a reset inside the day reads as the larger of the two stretches' growth
    being lost, which a day-sampled detector tolerates). NaN where a device sent none."""
    cols = []
    for name, counter in chosen:
        if counter:
            cols.append(stats.col(QUERY, name, "max") - stats.col(QUERY, name, "min"))
        else:
            cols.append(stats.col(QUERY, name, "mean"))
    return np.column_stack(cols) if cols else np.zeros((len(stats.device_ids), 0))
