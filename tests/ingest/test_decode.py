"""Every kind of bad message gets its own reason; good ones decode to records."""

from __future__ import annotations

import pytest

from ingest.decode import Decoder, Ignored, Reject, Rejected, StatusChange
from telemetry.records import Event, Reading
from telemetry.topics import TopicScheme
from tests.ingest.helpers import now_ms, telemetry

decoder = Decoder(
    TopicScheme("fleetcare"), max_payload_bytes=2048, max_future_ms=60_000, max_past_ms=86_400_000
)
NOW = now_ms()
T = "fleetcare/v1/purifier/p-1/telemetry"


def body(**over: object) -> bytes:
    import orjson

    doc: dict[str, object] = {
        "v": 1,
        "device_id": "p-1",
        "ts": NOW,
        "seq": 1,
        "boot": 1,
        "metrics": {"pm25": 12.5},
    }
    doc.update(over)
    return orjson.dumps(doc)


def test_a_good_message_becomes_a_reading_with_only_reported_metrics() -> None:
    r = decoder.decode(T, body(metrics={"pm25": 12, "mode": "auto"}), NOW)
    assert r == Reading("purifier", "p-1", 1, 1, NOW, {"pm25": 12.0, "mode": "auto"})


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "says"),
    [
        ("fleetcare/v2/purifier/p-1/telemetry", body(), Reject.BAD_TOPIC, "start with"),
        ("fleetcare/v1/toaster/p-1/telemetry", body(), Reject.UNKNOWN_DEVICE_TYPE, "toaster"),
        (T, b"x" * 4096, Reject.OVERSIZED, "4096 bytes"),
        (T, b"\xff\xfe\x00garbage", Reject.NOT_UTF8, ""),
        (T, b'{"v": 1, "device_id": "p-1",', Reject.NOT_JSON, "EOF"),
        (T, body(v=2), Reject.UNSUPPORTED_VERSION, "v:"),
        (T, body(seq="seven"), Reject.WRONG_TYPE, "seq"),
        (
            T,
            body(metrics={"pm25": 1, "colour": "red"}),
            Reject.UNKNOWN_METRIC,
            "'colour' is not in profile purifier v1",
        ),
        (T, body(metrics={"pm25": "12"}), Reject.WRONG_TYPE, "metrics.pm25"),
        (T, body().replace(b"12.5", b"NaN"), Reject.NON_FINITE, "finite"),
        (T, body().replace(b"12.5", b"Infinity"), Reject.NON_FINITE, "finite"),
        (T, body(metrics={"pm25": 5000}), Reject.OUT_OF_RANGE, "less than or equal to 2000"),
        (T, body(metrics={"fan_rpm": -1}), Reject.OUT_OF_RANGE, "greater than or equal"),
        (T, body(device_id="p-2"), Reject.DEVICE_MISMATCH, "'p-2' differs"),
        (T, body(ts=NOW + 3_600_000), Reject.TS_FUTURE, "ahead"),
        (T, body(ts=NOW - 3 * 86_400_000), Reject.TS_PAST, "days old"),
        (T, body(metrics={"mode": "disco"}), Reject.SCHEMA, "metrics.mode"),
        (T, b'{"v": 1, "device_id": "p-1", "metrics": {}}', Reject.MISSING_FIELD, "ts"),
        (T, body(seq=-1), Reject.OUT_OF_RANGE, "seq"),
        (T, body(colour="red"), Reject.UNKNOWN_FIELD, "colour"),
    ],
    # named, not shown: the payloads hold the time, so shown ids would differ per run
    ids=[
        "bad_topic",
        "unknown_type",
        "oversized",
        "not_utf8",
        "not_json",
        "version",
        "seq_not_int",
        "unknown_metric",
        "metric_as_string",
        "nan",
        "infinity",
        "over_maximum",
        "under_minimum",
        "device_mismatch",
        "ts_future",
        "ts_past",
        "unknown_enum_value",
        "missing_fields",
        "negative_seq",
        "extra_field",
    ],
)
def test_each_bad_message_is_rejected_with_its_reason(
    topic: str, payload: bytes, reason: Reject, says: str
) -> None:
    result = decoder.decode(topic, payload, NOW)
    assert isinstance(result, Rejected)
    assert result.reason is reason
    assert says in result.detail


def test_events_and_statuses_decode() -> None:
    import orjson

    e = decoder.decode(
        "fleetcare/v1/air_conditioner/ac-1/event",
        orjson.dumps(
            {
                "v": 1,
                "device_id": "ac-1",
                "ts": NOW,
                "seq": 9,
                "boot": 2,
                "event": "fault",
                "data": {"code": "E4"},
            }
        ),
        NOW,
    )
    assert e == Event("air_conditioner", "ac-1", 2, 9, NOW, "fault", {"code": "E4"})
    s = decoder.decode("fleetcare/v1/purifier/p-1/status", b"offline", NOW)
    assert s == StatusChange("purifier", "p-1", online=False)
    s = decoder.decode(
        "fleetcare/v1/purifier/p-1/status",
        b'{"v":1,"state":"online","firmware":"2.0.1","boot":4}',
        NOW,
    )
    assert s == StatusChange("purifier", "p-1", True, None, 4, "2.0.1")
    assert isinstance(decoder.decode("fleetcare/v1/purifier/p-1/status", b"", NOW), Ignored)
    assert isinstance(decoder.decode("fleetcare/v1/purifier/p-1/cmd", b"{}", NOW), Ignored)


def test_helper_payloads_are_valid() -> None:
    t, p = telemetry("p-9", 3)
    assert isinstance(decoder.decode(t, p, now_ms()), Reading)
