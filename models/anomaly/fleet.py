"""Health from data alone, for any profile: each device's day reduced to one number per
numeric metric its profile declares (a gauge's daily mean, a counter's daily growth),
and the device's days streamed through its own `StreamingDetector`, which learns that
unit's baseline from its install on and the relations between its metrics. Nothing here
knows what the metrics mean: a new product category gets health from its data."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

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


def watched(profile: Profile, chosen: Metrics) -> list[bool]:
    """Per chosen metric, whether a fault would show in it: a metric a sensor measures
    (the profile gives its datasheet). A metric without one is exact — a setting the user
    chose, a figure the device computes (life left, a usage counter) — and is a
    condition: it predicts the measured ones, and a thermostat turned down or a filter
    counter reset at a replacement is not a fault. A profile that names no sensor at all
    says nothing either way: every metric is watched."""
    sensed = {m.name for m in profile.doc.metrics if m.sensor is not None}
    flags = [name in sensed for name, _ in chosen]
    return flags if any(flags) else [True] * len(chosen)


def query(chosen: Metrics) -> Query:
    """The day's query: every chosen metric, no filter."""
    return Query(QUERY, tuple(name for name, _ in chosen))


COVERAGE = 0.9
"""A day with fewer readings of a metric than this share of what the batch's devices
usually send is missing for it: the mean of a part of a day (three hours of Wi-Fi down,
a unit unplugged at noon) is not the day's, and a daily rhythm turns the hours that did
not come into a false step. The missing day is counted by the detector's dropout
statistic instead."""


def features(stats: DayStats, chosen: Metrics, coverage: float = COVERAGE) -> NDArray[np.float64]:
    """devices × metrics: a gauge's mean, a counter's growth over the day (its max minus
    its min: a reset inside the day reads as the larger of the two stretches' growth
    being lost, which a day-sampled detector tolerates). NaN where a device sent none,
    or less than `coverage` of the readings the batch's devices usually send that day
    (the 90th percentile of their counts)."""
    cols = []
    for name, counter in chosen:
        if counter:
            col = stats.col(QUERY, name, "max") - stats.col(QUERY, name, "min")
        else:
            col = stats.col(QUERY, name, "mean")
        count = np.nan_to_num(stats.col(QUERY, name, "count"))
        sent = count[count > 0]
        if sent.size:
            col = np.where(count >= coverage * np.percentile(sent, 90), col, np.nan)
        cols.append(col)
    return np.column_stack(cols) if cols else np.zeros((len(stats.device_ids), 0))


MIN_PEERS = 5
"""A peer group with fewer devices reporting a metric that day says nothing about it."""


def peer_deviations(
    rows: NDArray[np.float64], groups: NDArray[Any], min_peers: int = MIN_PEERS
) -> NDArray[np.float64]:
    """devices × metrics: how far each device's day stands from its peers' (the same
    family in the same group — a territory — that day) in their spread: (x − median) /
    (1.4826 × MAD). Weather, season and a holiday move every peer; a fault moves one.
    NaN where the device sent nothing or its group had fewer than `min_peers` values."""
    out = np.full(rows.shape, np.nan)
    _, codes = np.unique(groups, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for at in np.split(order, bounds):
        block = rows[at]
        enough = np.sum(np.isfinite(block), axis=0) >= min_peers
        if not enough.any() or len(at) < min_peers:
            continue
        with np.errstate(all="ignore"):
            med = np.nanmedian(block[:, enough], axis=0)
            mad = np.nanmedian(np.abs(block[:, enough] - med), axis=0) * 1.4826
            spread = np.maximum(mad, 1e-9 + 1e-6 * np.abs(med))
            out[np.ix_(at, np.flatnonzero(enough))] = (block[:, enough] - med) / spread
    return out
