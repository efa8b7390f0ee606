"""The TelemetryStore contract: every backend passes the same suite."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telemetry.backends import StoreSettings, create_store
from telemetry.records import Aggregation, Event, RangeQuery, Reading
from telemetry.store import TelemetryStore

T0 = (int(time.time()) - 2 * 86400) * 1000  # device time two days ago, epoch ms


@pytest.fixture(params=["embedded", "influxdb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TelemetryStore]:
    if request.param == "influxdb":
        server = request.getfixturevalue("influxd")
        settings = StoreSettings(
            backend="influxdb",
            influx_url=server.url,
            influx_database=f"t_{uuid.uuid4().hex[:8]}",
        )
    else:
        settings = StoreSettings(backend="embedded")
    s = create_store(settings, str(tmp_path))
    async with s:
        yield s


def rq(
    device_type: str,
    device_id: str,
    metrics: tuple[str, ...],
    start: int,
    end: int,
    every_ms: int,
    aggregation: Aggregation = Aggregation.MEAN,
) -> RangeQuery:
    return RangeQuery(
        device_type=device_type,
        device_id=device_id,
        metrics=metrics,
        start=start,
        end=end,
        every_ms=every_ms,
        aggregation=aggregation,
    )


def purifier(device: str, seq: int, ts: int, boot: int = 1, **metrics: object) -> Reading:
    return Reading("purifier", device, boot, seq, ts, metrics or {"pm25": float(seq)})  # type: ignore[arg-type]


async def test_a_written_batch_is_counted_and_readable(store: TelemetryStore) -> None:
    batch = [purifier("p-1", i, T0 + i * 1000, pm25=10.0 + i, mode="auto") for i in range(20)]
    result = await store.write(batch)
    assert result.written == 20
    assert await store.count() == 20
    assert await store.count(device_id="p-1", device_type="purifier") == 20
    history = await store.history("purifier", "p-1", T0, T0 + 20_000, ["pm25", "mode"])
    assert history.ts == [T0 + i * 1000 for i in range(20)]
    assert history.columns["pm25"] == [10.0 + i for i in range(20)]
    assert history.columns["mode"] == ["auto"] * 20
    assert history.columns["seq"] == list(range(20))
    assert history.columns["boot"] == [1] * 20


async def test_writing_the_same_messages_again_stores_them_once(store: TelemetryStore) -> None:
    batch = [purifier("p-1", i, T0 + i) for i in range(50)]
    await store.write(batch)
    await store.write(batch[10:30])
    await store.write([*batch[:5], purifier("p-1", 50, T0 + 50)])
    assert await store.count() == 51


async def test_identity_is_device_boot_and_seq(store: TelemetryStore) -> None:
    """The same seq after a reboot is a new message; two devices never collide."""
    await store.write(
        [purifier("p-1", 1, T0), purifier("p-1", 1, T0 + 5, boot=2), purifier("p-2", 1, T0)]
    )
    assert await store.count() == 3
    assert await store.count(device_id="p-1") == 2


async def test_two_keys_in_the_same_millisecond_are_two_messages(store: TelemetryStore) -> None:
    """A reboot that repeats a seq, or a seq a million further on, at the very same device
    time: both are kept (a store that keys points by time alone would keep one)."""
    await store.write(
        [
            purifier("p-1", 1, T0, boot=1),
            purifier("p-1", 1, T0, boot=2),
            purifier("p-1", 5, T0 + 7),
            purifier("p-1", 1_000_005, T0 + 7),
            # a device whose clock restarts with every boot: the same times again
            *[purifier("p-2", i, T0 + i // 50, boot=b) for b in range(1, 6) for i in range(500)],
        ]
    )
    assert await store.count(device_id="p-1") == 4
    assert await store.count(device_id="p-2") == 5 * 500
    history = await store.history("purifier", "p-1", T0, T0 + 10, ["pm25"])
    assert sorted(zip(history.columns["boot"], history.columns["seq"], strict=True)) == [
        (1, 1),
        (1, 5),
        (1, 1_000_005),
        (2, 1),
    ]


async def test_messages_out_of_order_are_all_stored_in_time_order(store: TelemetryStore) -> None:
    await store.write([purifier("p-1", i, T0 + i * 10) for i in (5, 1, 4, 2, 3)])
    history = await store.history("purifier", "p-1", T0, T0 + 100, ["pm25"])
    assert history.columns["seq"] == [1, 2, 3, 4, 5]


async def test_latest_holds_the_newest_value_of_each_metric(store: TelemetryStore) -> None:
    await store.write(
        [
            purifier("p-1", 1, T0, pm25=5.0, fan_rpm=900),
            purifier("p-1", 2, T0 + 1000, pm25=7.5),
            Reading("water_purifier", "w-1", 1, 1, T0, {"tds_out_ppm": 12.0, "leak": False}),
        ]
    )
    await store.write([purifier("p-1", 0, T0 - 1000, pm25=99.0)])  # late arrival: older
    latest = await store.latest(["p-1", "w-1", "never-seen"])
    assert set(latest) == {"p-1", "w-1"}
    assert latest["p-1"].ts == T0 + 1000
    assert latest["p-1"].metrics["pm25"] == 7.5
    assert latest["p-1"].metrics["fan_rpm"] == 900
    assert latest["p-1"].device_type == "purifier"
    assert latest["w-1"].metrics == {"tds_out_ppm": 12.0, "leak": False}


async def test_range_query_downsamples_per_interval(store: TelemetryStore) -> None:
    # one reading a second for 3 minutes: pm25 = seconds since T0
    await store.write(
        [purifier("p-1", i, T0 + i * 1000, pm25=float(i), fan_rpm=i) for i in range(180)]
    )
    every = 60_000
    start = T0 - T0 % every  # epoch-aligned buckets
    q = rq("purifier", "p-1", ("pm25", "fan_rpm"), T0, T0 + 180_000, every)
    frame = await store.query(q)
    offset = (T0 - start) // 1000
    assert frame.ts[0] == start
    assert len(frame) in (3, 4)
    expected_first = [float(i) for i in range(180) if (i + offset) // 60 == 0]
    assert frame.columns["pm25"][0] == pytest.approx(sum(expected_first) / len(expected_first))
    for agg, fn in ((Aggregation.MIN, min), (Aggregation.MAX, max)):
        f = await store.query(rq("purifier", "p-1", ("pm25",), T0, T0 + 180_000, every, agg))
        assert f.columns["pm25"][0] == fn(expected_first)
    last = await store.query(
        rq("purifier", "p-1", ("pm25", "fan_rpm"), T0, T0 + 180_000, every, Aggregation.LAST)
    )
    assert last.columns["pm25"][0] == max(expected_first)
    assert last.columns["fan_rpm"][0] == int(max(expected_first))


async def test_range_query_leaves_out_empty_intervals_and_respects_bounds(
    store: TelemetryStore,
) -> None:
    await store.write([purifier("p-1", 1, T0), purifier("p-1", 2, T0 + 10 * 60_000)])
    frame = await store.query(rq("purifier", "p-1", ("pm25",), T0, T0 + 10 * 60_000, 60_000))
    assert frame.columns["pm25"] == [1.0]  # the second reading is at the exclusive end


async def test_last_works_on_enums_and_booleans(store: TelemetryStore) -> None:
    await store.write(
        [Reading("water_purifier", "w-1", 1, i, T0 + i, {"leak": i == 2}) for i in range(3)]
    )
    frame = await store.query(
        rq("water_purifier", "w-1", ("leak",), T0, T0 + 10, 60_000, Aggregation.LAST)
    )
    assert frame.columns["leak"] == [True]


async def test_mean_of_a_text_metric_is_refused_with_a_hint(store: TelemetryStore) -> None:
    with pytest.raises(ValueError, match="use last"):
        await store.query(rq("purifier", "p-1", ("mode",), T0, T0 + 1, 1000))
    with pytest.raises(ValueError, match="no metric 'nope'"):
        await store.history("purifier", "p-1", T0, T0 + 1, ["nope"])


async def test_events_are_stored_once_and_read_back(store: TelemetryStore) -> None:
    e = Event("air_conditioner", "ac-1", 1, 7, T0, "fault", {"code": "E4", "severity": 2})
    await store.write([], [e])
    await store.write([], [e])
    events = await store.events("air_conditioner", "ac-1", T0, T0 + 1)
    assert events == [e]


async def test_aggregate_gives_each_device_its_window_in_one_read(store: TelemetryStore) -> None:
    await store.write(
        [purifier("p-1", i, T0 + i * 1000, pm25=float(i), fan_rpm=100 * i) for i in range(10)]
        + [purifier("p-2", i, T0 + i * 1000, pm25=50.0) for i in range(3)]
        + [purifier("p-3", 1, T0 - 60_000, pm25=1.0)]  # before the window
        + [Reading("water_purifier", "w-1", 1, 1, T0, {"tds_out_ppm": 9.0})]  # another type
    )
    aggs = await store.aggregate("purifier", T0, T0 + 5000, ["pm25", "fan_rpm"])
    assert set(aggs) == {"p-1", "p-2"}
    p1 = aggs["p-1"]["pm25"]
    assert (p1.count, p1.mean, p1.min, p1.max) == (5, 2.0, 0.0, 4.0)
    assert aggs["p-1"]["fan_rpm"].max == 400
    assert aggs["p-2"]["fan_rpm"].count == 0  # never reported in the window
    only = await store.aggregate("purifier", T0, T0 + 5000, ["pm25"], device_ids=["p-2", "p-9"])
    assert set(only) == {"p-2"} and only["p-2"]["pm25"].mean == 50.0
    running = await store.aggregate(
        "purifier", T0, T0 + 5000, ["pm25"], where=[("fan_rpm", ">", 150.0), ("pm25", "<", 4.5)]
    )  # only readings 2, 3 and 4 ran the fan faster than 150 rpm (with pm25 under 4.5)
    assert (running["p-1"]["pm25"].count, running["p-1"]["pm25"].mean) == (3, 3.0)
    with pytest.raises(ValueError, match="only numbers"):
        await store.aggregate("purifier", T0, T0 + 5000, ["mode"])
    with pytest.raises(ValueError, match="> or <"):
        await store.aggregate("purifier", T0, T0 + 5000, ["pm25"], where=[("fan_rpm", "=", 1.0)])


async def test_recent_events_of_every_device_of_a_type(store: TelemetryStore) -> None:
    events = [
        Event("air_conditioner", "ac-1", 1, 7, T0, "error_code", {"code": "E6"}),
        Event("air_conditioner", "ac-2", 1, 3, T0 + 10, "error_code", {"code": "P1"}),
        Event("air_conditioner", "ac-2", 1, 4, T0 + 5000, "error_code", {"code": "E4"}),
        Event("water_purifier", "w-1", 1, 2, T0 + 20, "filter_replaced", {"stage": "ro"}),
    ]
    await store.write([], events)
    got = await store.recent_events("air_conditioner", T0, T0 + 1000)
    assert got == events[:2]


async def test_counts_filter_by_type_device_and_time(store: TelemetryStore) -> None:
    await store.write(
        [purifier("p-1", i, T0 + i * 1000) for i in range(10)]
        + [Reading("air_conditioner", "ac-1", 1, 1, T0, {"power_w": 800.0})]
    )
    assert await store.count(device_type="air_conditioner") == 1
    assert await store.count(start=T0 + 5000) == 5
    assert await store.count(start=T0, end=T0 + 5000) == 6
    assert await store.count(device_id="nobody") == 0


async def test_influxdb_with_authentication_needs_the_right_credentials(tmp_path: Path) -> None:
    """InfluxDB with auth on: user/password works; a wrong password is an outage (data kept,
    retried), never a silent drop."""
    import httpx
    from pydantic import SecretStr

    from bench.services import Influxd
    from telemetry.errors import StoreError, StoreUnavailable
    from tests.services import influxd_binary, missing

    if influxd_binary() is None:
        missing("influxd not installed")
    from fleetcare.brokers import free_port

    server = Influxd(
        root=tmp_path, port=free_port(), rpc_port=free_port(), binary=influxd_binary() or ""
    )
    server.extra_http = "auth-enabled = true"
    server.start()
    try:
        httpx.post(
            f"{server.url}/query",
            data={"q": "CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES"},
        )
        good = StoreSettings(
            backend="influxdb",
            influx_url=server.url,
            influx_username="admin",
            influx_password="s3cret",
        )  # type: ignore[arg-type]
        async with create_store(good, str(tmp_path)) as store:
            await store.write([purifier("p-1", 1, T0)])
            assert await store.count() == 1
        bad = good.model_copy(update={"influx_password": SecretStr("wrong")})
        store = create_store(bad, str(tmp_path))
        with pytest.raises(StoreError, match="authorization failed"):
            await store.open()
        await store.close()
        store = create_store(bad.model_copy(update={"influx_create": False}), str(tmp_path))
        await store.open()
        with pytest.raises(StoreUnavailable, match="not authorised"):
            await store.write([purifier("p-1", 2, T0)])
        await store.close()
    finally:
        server.stop()


async def test_influxdb_shards_last_as_long_as_configured_also_on_an_existing_policy(
    influxd: object,
) -> None:
    import httpx

    url = influxd.url  # type: ignore[attr-defined]
    name = f"t_{uuid.uuid4().hex[:8]}"

    def shard_duration() -> str:
        q = f'SHOW RETENTION POLICIES ON "{name}"'
        body = httpx.get(f"{url}/query", params={"q": q}).json()
        series = body["results"][0]["series"][0]
        rows = {r[0]: dict(zip(series["columns"], r, strict=True)) for r in series["values"]}
        return str(rows["fleetcare"]["shardGroupDuration"])

    base = {"backend": "influxdb", "influx_url": url, "influx_database": name}
    async with create_store(StoreSettings(**base), "."):
        assert shard_duration() == "168h0m0s"  # InfluxDB's own choice for a 400-day policy
    settings = StoreSettings(**base, influx_shard_duration="30d")
    async with create_store(settings, "."):
        assert shard_duration() == "720h0m0s"
    fresh = StoreSettings(**{**base, "influx_database": name + "b"}, influx_shard_duration="2d")
    async with create_store(fresh, "."):
        name += "b"
        assert shard_duration() == "48h0m0s"
