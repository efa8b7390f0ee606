"""Drive a fleet through simulated time and publish it over MQTT.

Time modes: `accelerated` runs simulated time `speed` times faster than the wall clock
from a start in the past, never ahead of the wall clock (the engine rejects device time
from the future): a fleet started 180 days ago at x3600 ages half a year in ~72 minutes,
then goes on in real time. `realtime` is x1. `backfill` publishes the history from the
start up to now as fast as the engine takes it (paced by the broker's backlog, see
`pacing`), then stops.

Chaos publishes duplicates, out-of-order and malformed messages at set rates and counts
them in the ground truth, so ingest can be checked against it. Commands on the devices'
`cmd` topics (e.g. `filter_replaced`) change the simulated devices: the service loop
closes on the device.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from device_sim.fleet import Fleet, Reading
from device_sim.pacing import BrokerBacklog
from device_sim.transport import Multiplexed, PerDevice, PerDeviceOptions, Transport
from telemetry.connection import MqttSettings
from telemetry.topics import BROADCAST, TopicKind

log = logging.getLogger("device_sim")
MAX_UNACKED = 20_000  # per connection: backpressure from the broker
DEFAULT_BACKFILL_BACKLOG = 100_000
Mode = Literal["accelerated", "realtime", "backfill"]
MALFORMED_KINDS = ("not_json", "out_of_range", "device_mismatch", "non_finite")


@dataclass(frozen=True, kw_only=True)
class Chaos:
    """Rates (0..1 per message) of what misbehaving devices and networks do."""

    duplicate: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicate", "out_of_order", "malformed"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"chaos {name} must be between 0 and 1")


@dataclass(frozen=True, kw_only=True)
class Connectivity:
    """Devices losing their connection: they buffer readings (bounded, oldest dropped) and
    replay them in order when back; their clocks may be off by a few seconds."""

    outages_per_day: float = 0.0  # per device, per simulated day
    outage_hours: float = 4.0  # mean simulated length (exponential)
    buffer: int = 500  # readings a device keeps while offline
    clock_skew_s: float = 0.0  # standard deviation of each device's clock offset

    def __post_init__(self) -> None:
        if self.outages_per_day < 0 or self.outage_hours <= 0 or self.buffer < 1:
            raise ValueError("outages_per_day >= 0, outage_hours > 0 and buffer >= 1")
        if not 0 <= self.clock_skew_s <= 120:
            raise ValueError("clock_skew_s between 0 and 120 (ingest rejects 10 min ahead)")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    mode: Mode = "accelerated"
    speed: float = 3600.0  # accelerated: simulated seconds per wall second
    report_interval_s: float = 900.0  # simulated seconds between a device's reports
    duration_s: float | None = None  # wall seconds; None = until stopped (or caught up)
    client_id: str = "fleetcare-sim"
    chaos: Chaos = field(default_factory=Chaos)
    connectivity: Connectivity = field(default_factory=Connectivity)
    per_device: PerDeviceOptions | None = None  # one connection per device; None: multiplexed
    processes: int = 1  # publisher processes, each owning a share of the devices
    # wait while the broker holds more than this for its subscribers (backfill: default 100k)
    max_backlog: int | None = None
    # accelerated: publish the history up to this simulated time (epoch s) at once, then
    # go on at `speed` (a demo's warm-up: days of a small fleet's history in seconds). It
    # waits on the broker's backlog only with `max_backlog`: a big fleet's warm-up needs it
    fast_until: float | None = None

    def __post_init__(self) -> None:
        if self.speed <= 0 or self.report_interval_s <= 0:
            raise ValueError("speed and report interval must be positive")
        if self.mode not in ("accelerated", "realtime", "backfill"):
            raise ValueError("mode is one of accelerated, realtime, backfill")
        if not 1 <= self.processes <= 64:
            raise ValueError("processes between 1 and 64")
        if self.max_backlog is not None and self.max_backlog < 1:
            raise ValueError("max_backlog must be at least 1")
        if self.fast_until is not None and self.mode != "accelerated":
            raise ValueError("fast_until is for the accelerated mode")

    @property
    def backlog_bound(self) -> int | None:
        if self.max_backlog is not None:
            return self.max_backlog
        return DEFAULT_BACKFILL_BACKLOG if self.mode == "backfill" else None


@dataclass
class RunStats:
    sent: int = 0  # distinct valid telemetry messages
    acknowledged: int = 0  # of those, acknowledged by the broker
    duplicates: int = 0
    out_of_order: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    commands: int = 0
    resent: int = 0  # messages published again because the engine asked (`resend`)
    outages: int = 0
    dropped: int = 0  # readings lost from full on-device buffers
    still_buffered: int = 0  # readings held by devices still offline at the end
    taken: int = 0  # readings the installed units took
    unsent: int = 0  # of those, never sent: telemetry gaps and lost readings (imperfection)
    events: int = 0  # error-code events published
    reports: int = 0
    waits: int = 0  # backfill: times publishing paused for the engine to catch up
    sim_time: float = 0.0
    elapsed_s: float = 0.0  # wall time until everything sent was acknowledged

    def add(self, other: RunStats) -> None:
        """Fold in another process's counts."""
        for name in (
            "sent",
            "acknowledged",
            "events",
            "duplicates",
            "out_of_order",
            "commands",
            "resent",
            "outages",
            "dropped",
            "still_buffered",
            "taken",
            "unsent",
            "waits",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.malformed.items():
            self.malformed[kind] = self.malformed.get(kind, 0) + n
        self.reports = max(self.reports, other.reports)
        self.sim_time = max(self.sim_time, other.sim_time)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)


def _malformed(kind: str, payload: dict[str, Any]) -> bytes:
    """The same message as a broken device or link would send it."""
    doc = dict(payload)
    metrics = dict(doc["metrics"])
    # a number, so that the value itself is what is wrong (a text metric would be a schema error)
    first = next(
        k for k, v in metrics.items() if isinstance(v, float | int) and not isinstance(v, bool)
    )
    if kind == "not_json":
        return orjson.dumps(doc)[:-7]
    if kind == "out_of_range":
        metrics[first] = 1e9
        doc["metrics"] = metrics
        return orjson.dumps(doc)
    if kind == "device_mismatch":
        doc["device_id"] = doc["device_id"] + "-x"
        return orjson.dumps(doc)
    metrics[first] = float("nan")  # non_finite: JSON's NaN literal, as some firmware sends
    doc["metrics"] = metrics
    return json.dumps(doc).encode()


class _Sender:
    """Publishes one round of readings, with chaos and connectivity loss, keeping counts.

    Random decisions are drawn for the whole fleet every round from one seeded stream, and
    each process uses its own devices' rows: the same seed gives every device the same
    outages, skew and chaos however many processes share the fleet.
    """

    def __init__(
        self, transport: Transport, options: RunOptions, fleet: Fleet, stats: RunStats
    ) -> None:
        self.transport, self.stats = transport, stats
        self.chaos, self.conn = options.chaos, options.connectivity
        self.truth = fleet.truth
        self.n = len(fleet.ids)
        self.rng = np.random.default_rng([fleet.spec.seed, 11])
        self.delayed: list[tuple[str, str, bytes]] = []
        self.offline_until: dict[str, float] = {}
        self.buffers: dict[str, deque[bytes]] = {}
        self.held_events: dict[str, list[bytes]] = {}  # rare: kept whole while offline
        self.p_outage = self.conn.outages_per_day * options.report_interval_s / 86400
        c = self.chaos
        self.random = bool(self.p_outage or c.duplicate or c.out_of_order or c.malformed)
        # each unit's own clock (the fleet's imperfection), and any skew asked for on top
        self.skew_ms = fleet.clock_ms.astype(np.int64)
        if self.conn.clock_skew_s:
            self.skew_ms = self.skew_ms + self.rng.normal(
                0, self.conn.clock_skew_s * 1000, self.n
            ).astype(np.int64)

    def own(self, owned: list[tuple[int, str, str]]) -> None:
        """Record the clock skew of the devices this process publishes."""
        for index, _t, device_id in owned:
            self.truth.devices[device_id].clock_skew_ms = int(self.skew_ms[index])

    def _connected(self, device_type: str, device_id: str, t: float, u: np.ndarray) -> bool:
        """Whether the device can publish now; starts and ends its outages."""
        until = self.offline_until.get(device_id)
        if until is not None:
            if t < until:
                return False
            del self.offline_until[device_id]  # back: online again, replay in order
            self.transport.came_back(device_type, device_id)
            for body in self.buffers.pop(device_id, deque()):
                self.transport.publish(
                    device_type, device_id, TopicKind.TELEMETRY, body, counted=True
                )
                self.stats.sent += 1
            for body in self.held_events.pop(device_id, []):
                self.transport.publish(device_type, device_id, TopicKind.EVENT, body)
                self.stats.events += 1
            return True
        if self.p_outage and u[0] < self.p_outage:
            length = -math.log(1 - u[1]) * self.conn.outage_hours * 3600  # exponential
            self.offline_until[device_id] = t + length
            self.truth.devices[device_id].outages.append([t, t + length])
            self.stats.outages += 1
            self.transport.went_offline(device_type, device_id)
            return False
        return True

    def _envelope(self, index: int, device_id: str, ts: int, boot: int, seq: int) -> dict[str, Any]:
        """What every message carries, with the device's own (possibly skewed) clock."""
        return {
            "v": 1,
            "device_id": device_id,
            "ts": ts + int(self.skew_ms[index]),
            "seq": seq,
            "boot": boot,
        }

    def round(self, readings: list[Reading], ts: int) -> None:
        late, self.delayed = self.delayed, []
        c, pub = self.chaos, self.transport.publish
        t = ts / 1000
        # columns: outage?, outage length, malformed?, which kind, late?, duplicate?
        draws = self.rng.random((self.n, 6)) if self.random else None
        u = np.ones(6)
        for index, device_type, device_id, metrics, boot, seq in readings:
            doc = self._envelope(index, device_id, ts, boot, seq)
            doc["metrics"] = metrics
            if draws is not None:
                u = draws[index]
                if not self._connected(device_type, device_id, t, u):
                    buffer = self.buffers.setdefault(device_id, deque(maxlen=self.conn.buffer))
                    if len(buffer) == buffer.maxlen:
                        self.stats.dropped += 1  # the oldest goes, as on real devices
                        self.truth.devices[device_id].dropped += 1
                    buffer.append(orjson.dumps(doc))
                    continue
                if u[2] < c.malformed:
                    kind = MALFORMED_KINDS[int(u[3] * len(MALFORMED_KINDS))]
                    self.stats.malformed[kind] = self.stats.malformed.get(kind, 0) + 1
                    pub(device_type, device_id, TopicKind.TELEMETRY, _malformed(kind, doc))
                    continue
            body = orjson.dumps(doc)
            self.stats.sent += 1
            if u[4] < c.out_of_order:
                self.stats.out_of_order += 1
                self.delayed.append((device_type, device_id, body))  # goes after the next round
                continue
            pub(device_type, device_id, TopicKind.TELEMETRY, body, counted=True)
            if u[5] < c.duplicate:
                self.stats.duplicates += 1
                pub(device_type, device_id, TopicKind.TELEMETRY, body)
        for device_type, device_id, body in late:
            pub(device_type, device_id, TopicKind.TELEMETRY, body, counted=True)

    def events(self, events: list[tuple[int, str, str, dict[str, str], int, int]], ts: int) -> None:
        """Publish this round's error-code events (held while the device is offline)."""
        for index, device_type, device_id, data, boot, seq in events:
            doc = self._envelope(index, device_id, ts, boot, seq)
            doc.update(event="error_code", data=data)
            body = orjson.dumps(doc)
            if device_id in self.offline_until:
                self.held_events.setdefault(device_id, []).append(body)
                continue
            self.transport.publish(device_type, device_id, TopicKind.EVENT, body)
            self.stats.events += 1

    def flush(self) -> None:
        for device_type, device_id, body in self.delayed:
            self.transport.publish(device_type, device_id, TopicKind.TELEMETRY, body, counted=True)
        self.delayed = []
        self.stats.still_buffered = sum(len(b) for b in self.buffers.values())


def _apply_commands(fleet: Fleet, transport: Transport, stats: RunStats, owned: set[str]) -> None:
    while not transport.commands.empty():
        device_id, command = transport.commands.get_nowait()
        if device_id == BROADCAST[1] and command.cmd == "resend":
            since_ms = command.args.get("since_ms")
            if isinstance(since_ms, int | float):
                stats.resent += transport.resend(since_ms / 1000)
            continue
        if device_id not in fleet.truth.devices:
            continue
        if command.cmd == "filter_replaced":
            fleet.replace_filters([device_id], stage=str(command.args.get("stage", "main")))
        elif command.cmd == "repair":
            fleet.repair([device_id], str(command.args.get("fault", "")))
        else:
            log.warning("unknown command", extra={"kv": {"device": device_id, "cmd": command.cmd}})
            continue
        # every process of a multiplexed fleet hears every command; the owner counts it
        stats.commands += device_id in owned


def run(
    fleet: Fleet,
    mqtt: MqttSettings,
    options: RunOptions,
    stop: threading.Event | None = None,
    stats: RunStats | None = None,
) -> RunStats:
    """Publish the fleet until `stop` is set, `duration_s` passes or (backfill) the run
    catches up with now; returns the counts (pass `stats` to watch them while it runs).

    With `processes > 1` the fleet is rebuilt from its spec in each process; the ground
    truth of every device comes back into `fleet.truth`.
    """
    stop = stop or threading.Event()
    stats = stats if stats is not None else RunStats()
    if options.processes > 1:
        from device_sim.parallel import run_parallel

        return run_parallel(fleet, mqtt, options, stop, stats)
    run_shard(fleet, mqtt, options, stop, stats, shard=(0, 1))
    _summarise(fleet, stats)
    return stats


def _summarise(fleet: Fleet, stats: RunStats) -> None:
    t = fleet.truth
    t.published, t.duplicates, t.out_of_order = (
        stats.acknowledged,
        stats.duplicates,
        stats.out_of_order,
    )
    t.malformed, t.dropped, t.still_buffered = (
        dict(stats.malformed),
        stats.dropped,
        stats.still_buffered,
    )
    t.events = stats.events
    t.unsent = stats.unsent


def run_shard(
    fleet: Fleet,
    mqtt: MqttSettings,
    options: RunOptions,
    stop: threading.Event,
    stats: RunStats,
    *,
    shard: tuple[int, int],
) -> None:
    """Run the whole fleet's physics; publish the devices of `shard` (k of n)."""
    k, n = shard
    client_id = options.client_id if n == 1 else f"{options.client_id}-{k}"
    owned = fleet.owned(shard)
    owned_ids = {device_id for _i, _t, device_id in owned}
    transport: Transport = (
        PerDevice(mqtt, options.per_device)
        if options.per_device is not None
        else Multiplexed(mqtt, client_id, window=MAX_UNACKED)
    )
    transport.start([(device_type, device_id) for _i, device_type, device_id in owned])
    bound = options.backlog_bound
    backlog = (
        BrokerBacklog(mqtt, f"{client_id}-pace", transport.published, transport.acked)
        if bound is not None
        else None
    )
    sender = _Sender(transport, options, fleet, stats)
    sender.own(owned)
    del owned
    speed = 1.0 if options.mode == "realtime" else options.speed
    wall0 = time.time()
    pace_wall0, pace_sim0 = wall0, fleet.t  # the accelerated clock's anchor
    fast_until = options.fast_until
    next_report = fleet.t
    last_log = 0.0
    try:
        while not stop.is_set():
            now = time.time()
            if options.duration_s is not None and now - wall0 >= options.duration_s:
                break
            if options.mode == "backfill" and next_report > now:
                break  # caught up with the present
            if fast_until is not None and next_report <= fast_until:
                target = min(fast_until, now)  # the warm-up: at once
            elif options.mode == "backfill":
                target = now
            else:
                if fast_until is not None:  # warmed up: the accelerated clock starts here
                    pace_wall0, pace_sim0, fast_until = now, next_report, None
                target = min(pace_sim0 + (now - pace_wall0) * speed, now)
            waiting = False
            while next_report <= target and not stop.is_set():
                if options.duration_s is not None and time.time() - wall0 >= options.duration_s:
                    break
                _apply_commands(fleet, transport, stats, owned_ids)
                if backlog is not None and bound is not None:
                    held = backlog.backlog()
                    if held is not None and held > bound:
                        waiting = True
                        stats.waits += 1
                        break
                fleet.advance(next_report)
                sender.round(fleet.readings(shard), int(next_report * 1000))
                taken, unsent = fleet.taken(shard)
                stats.taken, stats.unsent = stats.taken + taken, stats.unsent + unsent
                sender.events(fleet.events(shard), int(next_report * 1000))
                transport.flush()
                stats.reports += 1
                stats.sim_time = fleet.t
                next_report += options.report_interval_s
                if time.time() - last_log >= 5:
                    break  # report progress and hear commands during a long catch-up
            _apply_commands(fleet, transport, stats, owned_ids)
            transport.flush()
            if time.time() - last_log >= 5 and k == 0:
                last_log = time.time()
                _log_progress(fleet, stats, waiting)
            if waiting or next_report > target:
                stop.wait(0.2 if waiting else 0.05)
    finally:
        sender.flush()
        transport.wait_acked(60)
        # exact: the broker's PUBACKs of distinct valid readings (all of them, unless the
        # broker went away for good)
        stats.acknowledged = transport.acked_counted()
        transport.close()
        if backlog is not None:
            backlog.close()
        stats.elapsed_s = time.time() - wall0
        stats.sim_time = fleet.t


def _log_progress(fleet: Fleet, stats: RunStats, waiting: bool) -> None:
    log.info(
        "fleet",
        extra={
            "kv": {
                "sim_time": time.strftime("%Y-%m-%d %H:%M", time.gmtime(fleet.t)),
                "sent": stats.sent,
                "stages_exhausted": sum(len(d.exhaustions) for d in fleet.truth.devices.values()),
                **({"waiting_for_engine": True} if waiting else {}),
            }
        },
    )
