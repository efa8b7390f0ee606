"""The ingest worker: MQTT in, durable batches out, acknowledgement only after that.

paho's network thread does the least possible per message (append to a deque). An asyncio
loop takes batches by size, age or idleness, makes each durable through BatchProcessor, and
only then acknowledges its messages (paho manual ack). While the store is down nothing is
acknowledged: the broker's in-flight window (Mosquitto max_inflight_messages, MQTT 5
Receive Maximum) stops the flow, so memory stays bounded and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import paho.mqtt.client as paho

from db.errors import DatabaseUnavailable
from fleet.profiles import LiveProfiles
from fleet.registry import Enrolment
from fleet.state import DeviceStateRepository, StateUpdate
from ingest.metrics import IngestMetrics
from ingest.mqtt import Client, connect_async, make_client, subscribe_all
from ingest.options import IngestOptions
from ingest.processor import Batch, BatchProcessor, RawMessage
from telemetry.connection import MqttSettings
from telemetry.errors import StoreUnavailable
from telemetry.payload import CommandPayload
from telemetry.topics import TopicKind, TopicScheme

log = logging.getLogger("fleetcare.ingest")


# (topic, payload, mid, qos, connection generation, time.time() at receipt): a plain tuple,
# because building it is most of what paho's thread does per message. Acks go only to the
# connection (generation) a message arrived on.
_Pending = tuple[str, Any, int, int, int, float]
_ARRIVED: Final = 5


def default_client_id() -> str:
    return f"fleetcare-ingest-{socket.gethostname()}"


def subscriptions(scheme: TopicScheme, shared_group: str | None) -> list[str]:
    """Telemetry, events and misshapen topics (a device that publishes to one learns why
    from its dead letter) on the shared group; status on a plain filter, because brokers
    do not send retained messages to shared subscriptions (MQTT 5 §4.8.2)."""
    data = [scheme.filter(TopicKind.TELEMETRY), scheme.filter(TopicKind.EVENT)]
    data += scheme.misshapen()
    if shared_group:
        data = [f"$share/{shared_group}/{f}" for f in data]
    return [*data, scheme.filter(TopicKind.STATUS)]


class IngestWorker:
    def __init__(
        self,
        *,
        mqtt: MqttSettings,
        options: IngestOptions,
        processor: BatchProcessor,
        state: DeviceStateRepository,
        metrics: IngestMetrics,
        enrolment: Enrolment | None = None,
        profiles: LiveProfiles | None = None,
    ) -> None:
        """`enrolment`: register devices the first time their state is written (off when
        only registered devices are accepted). `profiles`: the product profiles in force,
        looked at every `options.profiles_refresh_s`: a new version is used without a
        restart."""
        self.mqtt = mqtt
        self.options = options
        self.processor = processor
        self.state = state
        self.metrics = metrics
        self.enrolment = enrolment
        self.profiles = profiles
        self.client_id = mqtt.private_name(options.client_id or default_client_id())
        self.scheme = TopicScheme(mqtt.topic_prefix)
        self._pending: deque[_Pending] = deque()
        self._generation = 0
        self._last_arrival = 0.0
        self._client: Client | None = None
        self._connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outage_since: float | None = None
        self._connection_error: str | None = None
        self._state_failing = False
        self._warned_unbounded = False
        self._lost_at: float | None = None  # when the connection last dropped (wall time)

    # -- paho thread -----------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            if self._connection_error != str(reason):
                log.error("broker refused the connection", extra={"kv": {"reason": str(reason)}})
            self._connection_error = str(reason)
            return
        self._connection_error = None
        self._generation += 1
        group = self.options.shared_group
        group = self.mqtt.private_name(group) if group else None
        subscribe_all(client, self.mqtt, subscriptions(self.scheme, group))
        session_present = bool(getattr(_f, "session_present", False))
        if self._lost_at is not None:
            self._ask_resend(client, self._lost_at)
        self.metrics.connected.set(1)
        self.metrics.connects.inc()
        log.info(
            "connected to broker",
            extra={
                "kv": {
                    "broker": self.mqtt.url,
                    "client_id": self.client_id,
                    "protocol": self.mqtt.protocol,
                    "session_present": session_present,
                }
            },
        )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.set)

    def _ask_resend(self, client: paho.Client, lost_at: float) -> None:
        """We are back after losing the connection. If the broker restarted, it kept our
        session but not its `$share` subscriptions (Mosquitto does not restore them from
        persistence, and says session_present all the same), so whatever devices sent
        before we resubscribed was dropped, and so was what it held for the group. We
        cannot tell a restart from a network blip, so after either: devices keep what
        they recently sent; ask them all for it again. What arrives twice is stored once."""
        window = self.options.resend_window_s
        if window <= 0:
            return
        since_ms = int((lost_at - window) * 1000)
        body = CommandPayload(cmd="resend", args={"since_ms": since_ms})
        client.publish(self.scheme.broadcast(), body.model_dump_json(exclude_none=True), qos=1)
        self.metrics.resend_requests.inc()
        log.warning(
            "reconnected: asked every device to resend what it sent since the loss",
            extra={"kv": {"since_ms": since_ms, "topic": self.scheme.broadcast()}},
        )

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        if self._connection_error is None:
            self._connection_error = "unreachable"
            log.error("broker unreachable; retrying", extra={"kv": {"broker": self.mqtt.url}})

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.metrics.connected.set(0)
        self._lost_at = time.time()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.clear)
        if getattr(reason, "value", 0) != 0:  # 0 = our own clean disconnect
            log.warning(
                "disconnected from broker; reconnecting", extra={"kv": {"reason": str(reason)}}
            )

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        now = time.time()
        self._last_arrival = now
        self._pending.append((msg.topic, msg.payload, msg.mid, msg.qos, self._generation, now))

    def _on_raw_publish(self, topic: str, payload: bytes, mid: int) -> None:
        """A QoS 1 message straight from its packet (`ingest.mqtt.Client`)."""
        now = time.time()
        self._last_arrival = now
        self._pending.append((topic, payload, mid, 1, self._generation, now))

    # -- asyncio side ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then flush, acknowledge and disconnect."""
        self._loop = asyncio.get_running_loop()
        if self.profiles is not None:  # before the first message: decode by the set in force
            await self.processor.use_profiles(await asyncio.to_thread(self.profiles.get))
        client = make_client(self.mqtt, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_raw_publish = self._on_raw_publish
        self._client = client
        connect_async(client, self.mqtt, receive_maximum=self.options.receive_maximum)
        client.loop_start()
        silence = asyncio.create_task(self._silence_loop(stop))
        state = asyncio.create_task(self._state_loop(stop))
        derived = asyncio.create_task(self.processor.run_observers())
        watch = asyncio.create_task(self._profiles_loop(stop)) if self.profiles else None
        try:
            await self._flush_loop(stop)
            with contextlib.suppress(TimeoutError):  # what is left, the evaluator judges
                await asyncio.wait_for(
                    self.processor.observers_idle(), self.options.shutdown_grace_s
                )
        finally:
            silence.cancel()
            state.cancel()
            derived.cancel()
            if watch is not None:
                watch.cancel()
            await self._write_state()
            client.disconnect()
            client.loop_stop()
            self.metrics.connected.set(0)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        opts = self.options
        max_age, idle = opts.max_batch_age_ms / 1000, opts.idle_flush_ms / 1000
        stop_deadline: float | None = None
        while True:
            if stop.is_set() and stop_deadline is None:
                stop_deadline = time.monotonic() + opts.shutdown_grace_s
                log.info(
                    "stopping: flushing what was received",
                    extra={"kv": {"pending": len(self._pending)}},
                )
            n = len(self._pending)
            self.metrics.pending.set(n)
            if n > 10 * opts.batch_size and not self._warned_unbounded:
                # only the broker's in-flight window bounds what we hold unacknowledged
                self._warned_unbounded = True
                log.warning(
                    "many unacknowledged messages held: bound the broker's in-flight window "
                    "(Mosquitto max_inflight_messages) or use MQTT 5",
                    extra={"kv": {"pending": n}},
                )
            if n == 0:
                self.metrics.oldest_pending.set(0)
                if stop_deadline is not None:
                    return
                await asyncio.sleep(idle)
                continue
            now = time.time()
            oldest = self._pending[0][_ARRIVED]
            self.metrics.oldest_pending.set(now - oldest)
            if (
                n >= opts.batch_size
                or now - oldest >= max_age
                or now - self._last_arrival >= idle
                or stop_deadline is not None
            ):
                items = [self._pending.popleft() for _ in range(min(n, opts.batch_size))]
                if not await self._flush(items, stop_deadline):
                    log.warning(
                        "shutting down with messages not durable; the broker redelivers them",
                        extra={"kv": {"unacknowledged": len(items) + len(self._pending)}},
                    )
                    return
            else:
                await asyncio.sleep(min(idle, max_age - (now - oldest)) / 2)

    async def _flush(self, items: list[_Pending], stop_deadline: float | None) -> bool:
        """Make `items` durable (retrying through outages), then acknowledge them."""
        batch = Batch([RawMessage(p[0], p[1], p[_ARRIVED]) for p in items])
        delay = self.options.backoff_initial_s
        started = time.monotonic()
        while True:
            try:
                await self.processor.process(batch)
                break
            except (StoreUnavailable, DatabaseUnavailable) as exc:
                self.metrics.failures.labels(type(exc).__name__).inc()
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    self.metrics.store_up.set(0)
                    log.error(
                        "store unreachable; holding acknowledgements and retrying",
                        extra={"kv": {"error": str(exc), "batch": len(items)}},
                    )
                if stop_deadline is not None and time.monotonic() + delay > stop_deadline:
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.backoff_max_s)
        if self._outage_since is not None:
            log.info(
                "store recovered",
                extra={"kv": {"outage_s": round(time.monotonic() - self._outage_since, 1)}},
            )
            self._outage_since = None
            self.metrics.store_up.set(1)
        self._ack(items)
        elapsed = time.monotonic() - started
        self.metrics.batch_seconds.observe(elapsed)
        self.metrics.batch_size.observe(len(items))
        self.metrics.ack_latency.observe(time.time() - items[0][_ARRIVED])
        received = self.metrics.received
        received.labels("telemetry").inc(len(batch.readings))
        received.labels("event").inc(len(batch.events))
        received.labels("status").inc(len(batch.statuses))
        kept = len(batch.readings) + len(batch.events) + len(batch.statuses)
        if batch.rejected:
            received.labels("rejected").inc(len(batch.rejected))
        if batch.ignored:
            received.labels("ignored").inc(batch.ignored)  # a command, a cleared status
        # what remains was dropped as a repeat of a message already in hand
        repeats = len(items) - kept - len(batch.rejected) - batch.ignored
        if repeats > 0:
            received.labels("duplicate").inc(repeats)
        return True

    def _ack(self, items: list[_Pending]) -> None:
        client = self._client
        assert client is not None
        generation = self._generation
        # a message from a connection that has since dropped is redelivered on the new
        # one with the same packet id; acking the old copy could ack another message
        mids = [p[2] for p in items if p[3] == 1 and p[4] == generation]
        client.ack_many(mids)
        acked = len(mids)
        for _t, _p, mid, qos, gen, _a in items:
            if qos == 2 and gen == generation:  # a broker that upgraded our QoS 1
                client.ack(mid, qos)
                acked += 1
        self.metrics.acked.inc(acked)

    async def _state_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.state_flush_s)
            await self._write_state()

    async def _write_state(self) -> None:
        buffer = self.processor.pending_state
        updates = buffer.take()
        if not updates:
            return
        try:
            await asyncio.to_thread(self._apply_state, updates)
        except Exception as exc:  # keep them for the next round; log the change only
            buffer.put_back(updates)
            if not self._state_failing:
                self._state_failing = True
                log.error("device state not written; retrying", extra={"kv": {"error": str(exc)}})
            return
        if self._state_failing:
            self._state_failing = False
            log.info("device state written again", extra={"kv": {"updates": len(updates)}})

    def _apply_state(self, updates: list[StateUpdate]) -> None:
        if self.enrolment is not None:
            new = self.enrolment.enrol({u.device_id: u.device_type for u in updates})
            if new:
                log.info("new devices registered", extra={"kv": {"devices": new}})
        self.state.apply(updates)

    async def _profiles_loop(self, stop: asyncio.Event) -> None:
        assert self.profiles is not None
        failing = False
        while not stop.is_set():
            try:
                current = await asyncio.to_thread(self.profiles.get)
                if await self.processor.use_profiles(current):
                    log.info(
                        "product profiles in force",
                        extra={"kv": {"profiles": ", ".join(p.label for p in current.values())}},
                    )
                failing = False
            except Exception as exc:  # keep the profiles we have; say so once
                if not failing:
                    log.error(
                        "profiles not read; keeping the ones in use",
                        extra={"kv": {"error": str(exc)}},
                    )
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.profiles_refresh_s)

    async def _silence_loop(self, stop: asyncio.Event) -> None:
        interval = self.options.silence_check_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            since = datetime.now(UTC) - timedelta(seconds=self.options.offline_after_s)
            try:
                n = await asyncio.to_thread(self.state.mark_silent, since)
            except Exception as exc:  # the flush loop reports outages; never die here
                log.debug("silence check failed", extra={"kv": {"error": str(exc)}})
                continue
            if n:
                log.info("devices went silent: marked offline", extra={"kv": {"devices": n}})
            ledger = self.processor.ledger
            if ledger is not None:  # every worker prunes: deleting twice is harmless
                try:
                    await asyncio.to_thread(ledger.prune, time.time())
                except Exception as exc:
                    log.debug("key ledger not pruned", extra={"kv": {"error": str(exc)}})
