"""The compiled telemetry decoder never accepts what the pydantic contract refuses, and
what it accepts it reads exactly as the contract does."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from telemetry.device_types import DeviceType, Metric, MetricKind
from telemetry.fastpayload import build_fast_decoder
from telemetry.metrics import DEVICE_TYPES
from telemetry.payload import build_telemetry_model


def _valid_value(m: Metric, rng: random.Random) -> Any:
    if m.kind is MetricKind.ENUM:
        return rng.choice(m.choices)
    if m.kind is MetricKind.BOOL:
        return rng.random() < 0.5
    assert m.minimum is not None and m.maximum is not None
    if m.kind is MetricKind.INT:
        return rng.randint(int(m.minimum), int(m.maximum))
    return rng.uniform(m.minimum, m.maximum)


def _odd_value(m: Metric, rng: random.Random) -> Any:
    """Values at and past the edges of what the metric allows, and of other types."""
    lo, hi = m.minimum or 0, m.maximum or 0
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            1,
            1.0,
            2.5,
            -1,
            lo,
            hi,
            lo - 1,
            hi + 1,
            lo - 1e-9,
            hi + 1e-9,
            float(lo),
            float(hi),
            int(hi) + 0.0,
            "auto",
            "",
            *m.choices,
            [1],
            {"x": 1},
            2**63,
            2**70,
            1e308,
        ]
    )


def _payload(dt: DeviceType, rng: random.Random) -> bytes:
    metrics = {
        m.name: (_valid_value(m, rng) if rng.random() < 0.7 else _odd_value(m, rng))
        for m in dt.metrics
        if rng.random() < 0.8
    }
    body: dict[str, Any] = {
        "v": 1,
        "device_id": "dev-1",
        "ts": 1_700_000_000_000,
        "seq": rng.randint(0, 10**6),
        "boot": rng.randint(0, 50),
        "metrics": metrics,
    }
    roll = rng.random()
    if roll < 0.05:
        body["v"] = rng.choice([2, True, 1.0, "1", None])
    elif roll < 0.10:
        body.pop(rng.choice(list(body)))
    elif roll < 0.15:
        body[rng.choice(["ts", "seq", "boot"])] = rng.choice(
            [-1, 1.5, 2**53 + 1, 32_503_680_000_001, "7", True, None]
        )
    elif roll < 0.20:
        body["extra"] = 1
    elif roll < 0.25:
        metrics["no_such_metric"] = 1
    elif roll < 0.30:
        body["device_id"] = rng.choice(
            ["", "has space", "x" * 80, 7, None, "dev-2", "dev-1\n", "-dev"]
        )
    text = json.dumps(body, separators=(",", ":")).encode()  # orjson stops at 64 bits
    if rng.random() < 0.05:  # JSON that orjson would not write
        text = rng.choice(
            [
                text.replace(b"1700000000000", b"1.7e12"),
                text[:-1],
                text + b" ",
                b" " + text,
                text.replace(b'"metrics":{', b'"metrics":{"x":NaN,'),
                text.replace(
                    b'"metrics":{', b'"metrics":{"' + dt.metrics[0].name.encode() + b'":1e999,'
                ),
                b"\xff" + text,
            ]
        )
    return text


@pytest.mark.parametrize("type_name", sorted(DEVICE_TYPES))
def test_what_the_compiled_decoder_accepts_the_contract_accepts_with_the_same_values(
    type_name: str,
) -> None:
    dt = DEVICE_TYPES[type_name]
    fast, model = build_fast_decoder(dt), build_telemetry_model(dt)
    rng = random.Random(type_name)
    accepted = refused_by_both = handed_on = 0
    for _ in range(3000):
        payload = _payload(dt, rng)
        got = fast(payload)
        try:
            want = model.model_validate_json(payload)
        except ValidationError:
            assert got is None, f"the compiled decoder took what the contract refuses: {payload!r}"
            refused_by_both += 1
            continue
        if got is None:
            handed_on += 1  # stricter than the contract: the model decides, nothing is lost
            continue
        accepted += 1
        reported = {k: v for k, v in want.metrics.items() if v is not None}
        assert (got.device_id, got.ts, got.seq, got.boot) == (
            want.device_id,
            want.ts,
            want.seq,
            want.boot,
        )
        assert got.metrics == reported
        assert [type(v) for v in got.metrics.values()] == [type(v) for v in reported.values()]
    # the mix exercised all three outcomes, and the shortcut takes most valid payloads
    assert refused_by_both > 300
    assert accepted > 5 * handed_on


def test_a_plain_valid_payload_takes_the_shortcut() -> None:
    dt = DEVICE_TYPES["purifier"]
    payload = orjson.dumps(
        {
            "v": 1,
            "device_id": "pur-1",
            "ts": 1_700_000_000_000,
            "seq": 3,
            "boot": 1,
            "metrics": {"pm25": 12, "fan_level": 3, "mode": "auto", "power_w": None},
        }
    )
    got = build_fast_decoder(dt)(payload)
    assert got is not None
    assert got.metrics == {"pm25": 12.0, "fan_level": 3, "mode": "auto"}
    assert type(got.metrics["pm25"]) is float
