"""Detector state as compact bytes, so the evaluator can keep millions of series in a
store and resume after a restart exactly where it stopped (round trip is lossless)."""

from __future__ import annotations

import struct

from models.anomaly.relations import RelationState
from models.anomaly.series import DAY_SLOTS, KINDS, SeriesState

VERSION = 2  # 2: the long-run center and reach, and the novelty tail
_SCALARS = (
    "last_t",
    "last_x",
    "dt",
    "level",
    "scale",
    "spread",
    "shift",
    "burst",
    "burst_mean",
    "burst_var",
    "err_day",
    "err_week",
    "repeat",
    "center",
    "reach",
)
_SERIES = struct.Struct(f"<qii{len(_SCALARS)}d{DAY_SLOTS}d{DAY_SLOTS}B7d{4 * len(KINDS)}d")


class StateError(ValueError):
    """Bytes that are not a detector state of this version and shape."""


def pack_series(s: SeriesState) -> bytes:
    tails = [v for t in s.tails for v in t]
    return _SERIES.pack(
        s.n, s.run, s.gap, *(getattr(s, f) for f in _SCALARS), *s.day, *s.day_seen, *s.week, *tails
    )


def unpack_series(data: bytes) -> SeriesState:
    if len(data) != _SERIES.size:
        raise StateError(f"a series state is {_SERIES.size} bytes, got {len(data)}")
    v = _SERIES.unpack(data)
    s = SeriesState(n=v[0], run=v[1], gap=v[2])
    i = 3
    for name in _SCALARS:
        setattr(s, name, v[i])
        i += 1
    s.day = list(v[i : i + DAY_SLOTS])
    i += DAY_SLOTS
    s.day_seen = list(v[i : i + DAY_SLOTS])
    i += DAY_SLOTS
    s.week = list(v[i : i + 7])
    i += 7
    s.tails = [list(v[i + 4 * j : i + 4 * j + 4]) for j in range(len(KINDS))]
    return s


SERIES_BYTES = _SERIES.size


def pack_relations(r: RelationState) -> bytes:
    flat = [
        *r.count,
        *r.mean,
        *r.var,
        *(v for row in r.cov for v in row),
        *(v for row in r.coef for v in row),
    ]
    flat += [*r.err, *r.r2, *(v for t in r.tails for v in t)]
    return struct.pack(f"<q{len(flat)}d", r.n, *flat)


def unpack_relations(k: int, data: bytes) -> RelationState:
    floats = 5 * k + 2 * k * k + 4 * k
    if len(data) != 8 + 8 * floats:
        raise StateError(f"a {k}-channel relation state is {8 + 8 * floats} bytes, got {len(data)}")
    r = RelationState(k)
    n, *v = struct.unpack(f"<q{floats}d", data)
    r.n = n

    def take(count: int) -> list[float]:
        nonlocal v
        out, v = v[:count], v[count:]
        return out

    r.count, r.mean, r.var = take(k), take(k), take(k)
    r.cov = [take(k) for _ in range(k)]
    r.coef = [take(k) for _ in range(k)]
    r.err, r.r2 = take(k), take(k)
    r.tails = [take(4) for _ in range(k)]
    return r
