"""The engine's general anomaly detector: any series, one channel or several, scored one
point at a time (`StreamingDetector.update`) or a whole array at once (`score_stream`,
which runs the same updates). One configuration serves every series.

The score is `-log10(p) / decades` clipped to [0, 1], where p is the tail probability
of the most surprising statistic (per channel: `series.py`; between channels:
`relations.py`), corrected for the number of looks. A score of 0.5 means p = 1e-3 on
every series, whatever its units, noise or rhythm. An alarm opens an episode; inside it
the score is capped below the threshold until the series has been quiet for
`quiet_points` points, so one fault raises one alarm, not one per point.

Channels can be *watched* (alarmed on) or *conditions*: a condition (a setting the user
chose, a figure the device computes, a usage counter) is learned and predicts the
watched channels through their relations, but is never alarmed on itself. A thermostat
turned down is not a fault; a compressor that draws more power than its speed explains
is.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.anomaly import codec, relations, series
from models.anomaly.config import DEFAULT, DetectorConfig

_HEADER = struct.Struct("<BHq?H")  # version, channels, rows, in episode, quiet points


@dataclass(frozen=True, slots=True)
class Result:
    score: float  # in [0, 1]
    alarm: bool  # the first point of an episode: the engine's decision
    kind: str  # spike, shift, burst, stuck, dropout, novel or relation ("" when quiet)
    channel: int  # the channel that scored highest (-1 when quiet)
    expected: tuple[float, ...]  # each channel's baseline for this point


class StreamingDetector:
    """Per-series streaming detector. `normal_rows` are learned but never alarmed on
    (a stretch the user vouches for); the first `config.warmup` points are always.
    `watch` says per channel whether it is alarmed on (default: every channel); the
    others are conditions (see the module's docstring)."""

    def __init__(
        self,
        channels: int = 1,
        *,
        config: DetectorConfig = DEFAULT,
        normal_rows: int = 0,
        watch: Sequence[bool] | None = None,
    ) -> None:
        if channels < 1:
            raise ValueError(f"a detector needs at least one channel, got {channels}")
        self.watch = tuple(bool(w) for w in watch) if watch is not None else (True,) * channels
        if len(self.watch) != channels:
            raise ValueError(f"{len(self.watch)} watch flags for {channels} channels")
        if not any(self.watch):
            raise ValueError("a detector must watch at least one channel")
        self.config = config
        self.channels = channels
        self.normal_rows = normal_rows
        self.rows = 0
        self.episode = False
        self.quiet = 0
        self._series = [series.SeriesState() for _ in range(channels)]
        self._relations = relations.RelationState(channels) if channels > 1 else None

    def update(self, t: float, values: float | Sequence[float] | NDArray[np.float64]) -> Result:
        """Score one row (t in seconds since the epoch; NaN marks a missing value), then
        learn from it."""
        cfg = self.config
        xs = np.atleast_1d(np.asarray(values, dtype=np.float64)).tolist()
        if len(xs) != self.channels:
            raise ValueError(f"expected {self.channels} values per row, got {len(xs)}")
        p_best, kind, channel = 1.0, "", -1
        expected = []
        watch = self.watch
        for j, s in enumerate(self._series):
            step = series.update(cfg, s, t, xs[j])
            expected.append(step.expected)
            if watch[j] and step.p < p_best:
                p_best, kind, channel = step.p, step.kind, j
        p_best = min(1.0, p_best * sum(watch))
        if self._relations is not None:
            p_rel, j = relations.update(cfg, self._relations, xs, watch)
            if p_rel < p_best:
                p_best, kind, channel = p_rel, "relation", j
            p_best = min(1.0, p_best * 2.0)  # the channels and their relations: two looks
        self.rows += 1
        score = min(1.0, -math.log10(max(p_best, 1e-300)) / cfg.decades)
        if self.rows <= self.normal_rows:
            score = min(score, cfg.threshold * 0.5)
        alarm = False
        if self.episode:
            self.quiet = self.quiet + 1 if score < cfg.threshold * 0.5 else 0
            if self.quiet >= cfg.quiet_points:
                self.episode = False
            score = min(score, cfg.threshold * 0.5)
        elif score >= cfg.threshold:
            self.episode, self.quiet, alarm = True, 0, True
        if score <= 0.0:
            kind, channel = "", -1
        return Result(score, alarm, kind, channel, tuple(expected))

    def deviations(self, values: Sequence[float], expected: Sequence[float]) -> list[float]:
        """Each channel's signed distance from its baseline (`Result.expected`), in its
        own noise: what an alarm looked like, in units any series shares. NaN where the
        value is missing or the channel has no baseline yet."""
        out = []
        for s, x, e in zip(self._series, values, expected, strict=True):
            sig = max(s.scale * series.SQRT_PI_2, 1e-9 + 1e-6 * abs(s.level))
            out.append((x - e) / sig if s.scale > 0.0 else math.nan)
        return out

    def to_bytes(self) -> bytes:
        head = _HEADER.pack(codec.VERSION, self.channels, self.rows, self.episode, self.quiet)
        head += bytes(self.watch)
        body = b"".join(codec.pack_series(s) for s in self._series)
        if self._relations is not None:
            body += codec.pack_relations(self._relations)
        return head + body

    @classmethod
    def from_bytes(
        cls, data: bytes, *, config: DetectorConfig = DEFAULT, normal_rows: int = 0
    ) -> StreamingDetector:
        if len(data) < _HEADER.size:
            raise codec.StateError(f"{len(data)} bytes is too short for a detector state")
        version, k, rows, episode, quiet = _HEADER.unpack_from(data)
        if version != codec.VERSION:
            raise codec.StateError(f"state version {version}, this detector reads {codec.VERSION}")
        at = _HEADER.size + k
        watch = data[_HEADER.size : at]
        if len(watch) != k or not set(watch) <= {0, 1} or not any(watch):
            raise codec.StateError(f"the state's watched channels are not {k} flags")
        det = cls(k, config=config, normal_rows=normal_rows, watch=[bool(w) for w in watch])
        det.rows, det.episode, det.quiet = rows, episode, quiet
        for j in range(k):
            det._series[j] = codec.unpack_series(data[at : at + codec.SERIES_BYTES])
            at += codec.SERIES_BYTES
        if k > 1:
            det._relations = codec.unpack_relations(k, data[at:])
        elif at != len(data):
            raise codec.StateError(f"{len(data) - at} bytes left over after a 1-channel state")
        return det


@dataclass(frozen=True, slots=True)
class StreamScores:
    score: NDArray[np.float64]
    alarm: NDArray[np.bool_]
    kind: list[str]
    channel: NDArray[np.int_]


def epoch_seconds(ts: ArrayLike) -> NDArray[np.float64]:
    """Timestamps (datetime64, pandas, or numbers already in seconds) as float seconds."""
    arr = np.asarray(ts)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    if arr.dtype == object:
        return np.asarray(arr.astype("datetime64[ns]").astype(np.int64) / 1e9)
    return arr.astype(np.float64)


def score_stream(
    ts: ArrayLike,
    values: ArrayLike,
    *,
    normal_rows: int = 0,
    config: DetectorConfig = DEFAULT,
    detector: StreamingDetector | None = None,
) -> StreamScores:
    """Score every row in order with `StreamingDetector.update` (so exactly what the
    engine would have said at each point, causally). `values` is (n,) or (n, channels);
    pass `detector` to continue a stream from a saved state."""
    t = epoch_seconds(ts)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or len(x) != len(t):
        raise ValueError(f"{len(t)} timestamps for values of shape {x.shape}")
    det = detector or StreamingDetector(x.shape[1], config=config, normal_rows=normal_rows)
    n = len(t)
    score = np.zeros(n)
    alarm = np.zeros(n, dtype=bool)
    channel = np.full(n, -1)
    kinds: list[str] = []
    for i in range(n):
        r = det.update(float(t[i]), x[i])
        score[i], alarm[i], channel[i] = r.score, r.alarm, r.channel
        kinds.append(r.kind)
    return StreamScores(score, alarm, kinds, channel)


def frame_scores(
    frame: Any, *, time_column: str, columns: Sequence[str] | None = None, **kw: Any
) -> StreamScores:
    """`score_stream` for a pandas DataFrame: a time column (datetimes, naive or with a
    zone, or epoch seconds) and value columns (default: every numeric column but the
    time)."""

    def numeric(c: str) -> bool:
        return getattr(frame[c].dtype, "kind", "O") in "iufb"

    cols = (
        list(columns) if columns else [c for c in frame.columns if c != time_column and numeric(c)]
    )
    when = frame[time_column]
    ts = when.to_numpy(np.float64) if numeric(time_column) else when.to_numpy("datetime64[ns]")
    return score_stream(ts, frame[cols].to_numpy(np.float64), **kw)
