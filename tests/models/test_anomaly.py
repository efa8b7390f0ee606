"""The general streaming detector, as the spec reads: causal, calibrated on healthy
series of every shape, one alarm per episode, rhythm is not an anomaly but a missed
cycle is, a broken relation is caught while each channel looks normal, and its state
survives a restart unchanged and small."""

from __future__ import annotations

import numpy as np
import pytest

from models.anomaly import StateError, StreamingDetector, score_stream

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC
FIVE_MIN = 300.0


def times(n: int, step: float = FIVE_MIN) -> np.ndarray:
    return START + np.arange(n) * step


def healthy(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = times(n)
    if kind == "gaussian":
        return rng.normal(50, 2, n)
    if kind == "daily rhythm":
        return 20 + 10 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, n)
    if kind == "heavy tails":
        return 5 + rng.standard_t(3, n)
    if kind == "quantised":
        return np.round(rng.normal(20, 0.4, n))
    if kind == "counts":
        return rng.poisson(3, n).astype(float)
    if kind == "autocorrelated":
        x = np.zeros(n)
        noise = rng.normal(0, 1, n)
        for i in range(1, n):
            x[i] = 0.95 * x[i - 1] + noise[i]
        return x
    raise ValueError(kind)


KINDS = ["gaussian", "daily rhythm", "heavy tails", "quantised", "counts", "autocorrelated"]


def test_a_score_depends_only_on_the_points_before_it() -> None:
    x = healthy("daily rhythm", 3000)
    base = score_stream(times(3000), x).score
    changed = x.copy()
    changed[2000:] = np.random.default_rng(9).normal(500, 50, 1000)  # a wild future
    after = score_stream(times(3000), changed).score
    np.testing.assert_array_equal(base[:2000], after[:2000])
    assert after[2000] > base[2000]  # and the change itself is seen at once


@pytest.mark.parametrize("kind", KINDS)
def test_healthy_series_rarely_cross_the_one_threshold(kind: str) -> None:
    """20,000 points (70 days at 5 minutes) of each shape, the same configuration:
    under one alarm per 1,000 points, and scores mostly near zero."""
    n = 20_000
    result = score_stream(times(n), healthy(kind, n))
    assert result.alarm.sum() <= n / 1000
    assert np.median(result.score) < 0.1
    assert result.score.min() >= 0.0 and result.score.max() <= 1.0


def test_a_spike_is_one_alarm_and_named() -> None:
    x = healthy("gaussian", 3000)
    x[2000] += 40  # 20 standard deviations
    r = score_stream(times(3000), x)
    assert r.alarm[2000] and r.kind[2000] == "spike"
    assert r.alarm[1990:2100].sum() == 1


def test_a_level_shift_raises_one_alarm_then_becomes_the_new_normal() -> None:
    x = healthy("gaussian", 6000)
    x[3000:] += 20  # ten standard deviations, for good
    r = score_stream(times(6000), x)
    assert r.alarm[3000:3010].any()
    assert r.alarm[3000:].sum() == 1
    assert r.score[4000:].max() < 0.5  # the baseline has moved to the new level


def test_a_long_fault_is_one_episode_not_one_alarm_per_point() -> None:
    x = healthy("gaussian", 4000)
    x[2000:2200] += np.random.default_rng(3).normal(0, 15, 200)  # 200 points of chaos
    r = score_stream(times(4000), x)
    assert 1 <= r.alarm[2000:2200].sum() <= 2
    assert r.alarm[2200:].sum() <= 1


def test_a_daily_rhythm_is_not_an_anomaly_but_a_missed_cycle_is() -> None:
    n = 288 * 20  # twenty days
    x = healthy("daily rhythm", n)
    plain = score_stream(times(n), x)
    assert plain.alarm[288 * 3 :].sum() <= 1
    missed = x.copy()
    day = slice(288 * 15, 288 * 16)
    missed[day] = 20 + np.random.default_rng(4).normal(0, 1, 288)  # the cycle does not come
    r = score_stream(times(n), missed)
    assert r.alarm[day].any()


def test_a_stuck_sensor_is_caught() -> None:
    x = healthy("gaussian", 3000)
    x[2000:2100] = x[1999]
    r = score_stream(times(3000), x)
    hits = np.flatnonzero(r.alarm[2000:2100])
    assert hits.size == 1 and r.kind[2000 + hits[0]] == "stuck"


def test_a_run_of_zeros_is_idleness_not_a_stuck_sensor() -> None:
    """A count or a usage that stops (a purifier off for weeks, a feed with no posts)
    repeats zero: the same run at any other value is a stuck sensor."""
    x = healthy("counts", 3000)
    x[2000:2300] = 0.0
    idle = score_stream(times(3000), x)
    assert "stuck" not in idle.kind[2000:2300]
    x[2000:2300] = 2.0
    stuck = score_stream(times(3000), x)
    assert "stuck" in [stuck.kind[i] for i in np.flatnonzero(stuck.alarm[2000:2300]) + 2000]


def test_a_dropout_is_caught_on_the_first_point_after_it() -> None:
    t = times(3000)
    t[2000:] += 6 * 3600  # six hours of silence in a five-minute series
    r = score_stream(t, healthy("gaussian", 3000))
    assert r.alarm[2000] and r.kind[2000] == "dropout"


def test_missing_values_are_no_evidence_and_a_run_of_them_is_a_dropout_while_it_lasts() -> None:
    """A sensor that goes silent for good never sends the value that would end its gap:
    the gap is scored while it lasts."""
    x = healthy("gaussian", 3000)
    x[1000] = np.nan
    x[2000:] = np.nan
    r = score_stream(times(3000), x)
    assert r.score[1000] == 0.0 and not r.alarm[995:1010].any()
    (alarms,) = np.flatnonzero(r.alarm[1500:]) + 1500
    assert 2000 < alarms < 2020 and r.kind[alarms] == "dropout"


def test_a_slow_drift_out_of_the_range_the_series_has_kept_is_caught() -> None:
    """A sensor drifting half a noise width every 20 points: no point is far from the
    baseline, which follows it, but the series soon stands where it has never been."""
    caught = 0
    for seed in range(12):
        x = healthy("gaussian", 4000, seed=seed)
        x[3000:] += 0.05 * np.arange(1000)
        first = np.flatnonzero(score_stream(times(4000), x).alarm[3000:])
        caught += bool(first.size) and first[0] < 200
    assert caught >= 8


def related(n: int, seed: int = 5) -> np.ndarray:
    """Fan speed and the current it draws: the speed wanders, the current follows it."""
    rng = np.random.default_rng(seed)
    wander = np.zeros(n)
    noise = rng.normal(0, 1, n)
    for i in range(1, n):
        wander[i] = 0.98 * wander[i - 1] + noise[i]
    speed = 900 + 10 * wander
    current = 0.002 * speed + rng.normal(0, 0.005, n)
    return np.column_stack([speed, current])


def test_a_broken_relation_is_caught_while_each_channel_looks_normal() -> None:
    n, at = 4000, 3000
    x = related(n)
    # from here the current replays an earlier stretch of itself, starting where it
    # stands (the same level, the same wander), while the speed goes its own way: each
    # channel alone is as usual, but the two drift apart
    start = 500 + int(np.argmin(np.abs(x[500:2000, 1] - x[at - 1, 1])))
    broken = x.copy()
    broken[at:, 1] = x[start : start + n - at, 1]
    together = score_stream(times(n), broken)
    first = at + int(np.argmax(together.alarm[at:]))
    assert together.alarm[at:].any() and first < at + 100
    assert together.kind[first] == "relation"
    alone = score_stream(times(n), broken[:, 1])  # the current on its own
    assert not alone.alarm[at : at + 100].any()
    assert score_stream(times(n), x).alarm[500:].sum() <= 2  # the healthy pair


def test_a_channel_that_never_reports_does_not_blind_the_relations() -> None:
    n, at = 4000, 3000
    x = related(n)
    start = 500 + int(np.argmin(np.abs(x[500:2000, 1] - x[at - 1, 1])))
    x[at:, 1] = x[start : start + n - at, 1]
    silent = np.column_stack([x, np.full(n, np.nan)])  # a metric a newer firmware adds
    r = score_stream(times(n), silent)
    first = at + int(np.argmax(r.alarm[at:]))
    assert r.alarm[at:].any() and first < at + 100 and r.kind[first] == "relation"


def test_a_condition_is_learned_but_never_alarmed_on() -> None:
    """A filter's life left, as the device computes it: it falls, then jumps back to 100
    at each replacement. A condition, not health: its jumps raise nothing."""
    n = 4000
    life = 100.0 - (np.arange(n) % 700) / 7.0
    x = np.column_stack([related(n), life])
    resets = np.arange(700, n, 700)
    near = np.concatenate([np.arange(r, r + 5) for r in resets])
    watched = score_stream(times(n), x)
    assert watched.alarm[near].any() and 2 in watched.channel[near]
    r = score_stream(times(n), x, detector=StreamingDetector(3, watch=[True, True, False]))
    assert not r.alarm[near].any() and 2 not in r.channel


def test_a_condition_still_explains_the_watched_channel() -> None:
    """The fan speed as a condition: a current that stops following it is caught."""
    n, at = 4000, 3000
    x = related(n)
    start = 500 + int(np.argmin(np.abs(x[500:2000, 1] - x[at - 1, 1])))
    x[at:, 1] = x[start : start + n - at, 1]
    r = score_stream(times(n), x, detector=StreamingDetector(2, watch=[False, True]))
    first = at + int(np.argmax(r.alarm[at:]))
    assert r.alarm[at:].any() and first < at + 100
    assert r.kind[first] == "relation" and r.channel[first] == 1


def test_a_detector_must_watch_something() -> None:
    with pytest.raises(ValueError, match="at least one channel"):
        StreamingDetector(2, watch=[False, False])
    with pytest.raises(ValueError, match="2 watch flags for 3 channels"):
        StreamingDetector(3, watch=[True, False])


def test_a_constant_channel_does_not_blind_the_others() -> None:
    n = 3000
    x = np.column_stack([np.full(n, 7.0), healthy("gaussian", n)])
    x[2000, 1] += 40
    r = score_stream(times(n), x)
    assert r.alarm[2000] and r.channel[2000] == 1
    assert r.alarm.sum() <= 3


def test_known_normal_rows_are_learned_and_never_alarmed_on() -> None:
    x = healthy("gaussian", 3000)
    x[500] += 40
    r = score_stream(times(3000), x, normal_rows=1000)
    assert not r.alarm[:1000].any()


def test_the_state_survives_a_restart_unchanged() -> None:
    n = 6000
    t, x = times(n), related(n)
    x[4500, 0] += 500
    whole = score_stream(t, x)
    first = StreamingDetector(2)
    for i in range(3000):
        first.update(float(t[i]), x[i])
    resumed = StreamingDetector.from_bytes(first.to_bytes())
    rest = score_stream(t[3000:], x[3000:], detector=resumed)
    np.testing.assert_array_equal(whole.score[3000:], rest.score)
    np.testing.assert_array_equal(whole.alarm[3000:], rest.alarm)
    # which channels are conditions is part of the state
    conditions = StreamingDetector(2, watch=[False, True])
    assert StreamingDetector.from_bytes(conditions.to_bytes()).watch == (False, True)


def test_one_series_state_fits_in_a_kilobyte() -> None:
    det = StreamingDetector(1)
    for i, v in enumerate(healthy("daily rhythm", 2000)):
        det.update(START + i * FIVE_MIN, v)
    assert len(det.to_bytes()) <= 1024


def test_a_state_that_is_not_one_is_refused_with_the_reason() -> None:
    with pytest.raises(StateError, match="too short"):
        StreamingDetector.from_bytes(b"\x01")
    data = bytearray(StreamingDetector(1).to_bytes())
    data[0] = 99
    with pytest.raises(StateError, match="version 99"):
        StreamingDetector.from_bytes(bytes(data))
    with pytest.raises(StateError, match="bytes"):
        StreamingDetector.from_bytes(StreamingDetector(1).to_bytes() + b"xx")


def test_rows_must_match_the_channels() -> None:
    with pytest.raises(ValueError, match="expected 2 values per row, got 3"):
        StreamingDetector(2).update(START, [1.0, 2.0, 3.0])


def test_datetimes_are_read_as_times() -> None:
    stamps = np.datetime64("2026-01-01T00:00") + np.arange(100) * np.timedelta64(5, "m")
    x = healthy("gaussian", 100)
    np.testing.assert_array_equal(score_stream(stamps, x).score, score_stream(times(100), x).score)


def test_a_dataframe_is_scored_as_its_arrays_are() -> None:
    import pandas as pd

    from models.anomaly import frame_scores

    n = 500
    x = related(n)
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2026-01-01", periods=n, freq="5min", tz="UTC"),
            "speed": x[:, 0],
            "current": x[:, 1],
            "site": "a",
        }
    )
    got = frame_scores(frame, time_column="when")
    np.testing.assert_array_equal(got.score, score_stream(times(n), x).score)
