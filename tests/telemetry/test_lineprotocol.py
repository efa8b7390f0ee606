"""How a reading is written to InfluxDB: one line per reading, each metric with the
field type its kind fixes, the key (boot, seq) in the time's sub-millisecond digits."""

from __future__ import annotations

import numpy as np

from telemetry.lineprotocol import _mix, formatters, point_time_ns, reading_line
from telemetry.metrics import DEVICE_TYPES
from telemetry.records import Reading


def test_each_kind_of_metric_is_written_with_its_field_type() -> None:
    fmt = formatters(DEVICE_TYPES)
    r = Reading(
        "purifier",
        "pur 1,a=b",
        2,
        7,
        1_700_000_000_000,
        {"pm25": 12.5, "fan_rpm": 1200, "mode": 'say "hi"', "power_w": np.float64(3.25)},
    )
    assert reading_line(r, fmt) == (
        r"purifier,device_id=pur\ 1\,a\=b boot=2i,seq=7i,pm25=12.5,fan_rpm=1200i,"
        r'mode="say \"hi\"",power_w=3.25 '
        f"{point_time_ns(1_700_000_000_000, 7, 2)}"
    )
    # the line head is kept per device: a second reading of the device reuses it
    assert reading_line(r, fmt) == reading_line(r, formatters(DEVICE_TYPES))


def test_a_bool_metric_is_a_boolean_field() -> None:
    fmt = formatters(DEVICE_TYPES)
    r = Reading("dehumidifier", "d1", 0, 1, 5, {"running": True})
    assert reading_line(r, fmt).startswith("dehumidifier,device_id=d1 boot=0i,seq=1i,running=true ")


def test_the_point_time_carries_the_key_below_the_millisecond() -> None:
    for ts, seq, boot in [
        (5, 0, 0),
        (5, 999_999, 0),
        (5, 1_000_000, 3),
        (1_700_000_000_000, 42, 7),
    ]:
        shift = _mix(((boot & 0xFFFFFFFF) << 32) ^ (seq // 1_000_000))
        assert point_time_ns(ts, seq, boot) == ts * 1_000_000 + (seq + shift) % 1_000_000
    # consecutive seqs of one boot are consecutive nanoseconds (mod a millisecond)
    times = {point_time_ns(5, s, 1) % 1_000_000 for s in range(1000)}
    assert len(times) == 1000
    assert point_time_ns(5, 1, 1) != point_time_ns(5, 1, 2)
