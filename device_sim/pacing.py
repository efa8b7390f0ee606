"""Backfill pacing: publish no faster than the engine drains the broker.

The broker acknowledging a message only means it is queued; an engine that falls behind
leaves it queued, and a broker queue has limits (Mosquitto drops past
`max_queued_messages`). A device only speaks MQTT, so the signal is the broker's own:
Mosquitto publishes `$SYS/broker/store/messages/count` (messages held, including those
queued for durable subscribers such as the ingest workers) and
`$SYS/broker/retained messages/count` every `sys_interval` seconds. Their difference is
the backlog; backfill waits while it is above a bound. Between two reports the backlog is
estimated as if the engine drained nothing (last figure + what we published since), so a
fast publisher cannot overshoot the bound by a whole interval's worth.

"Since" must start no later than the broker's snapshot, or the messages in flight when
the broker took it are counted nowhere and a fast publisher overshoots. The broker takes
the snapshot a moment before its report reaches us, and it may still be reading
messages we sent long before, so the count a figure covers is taken from what the broker
had acknowledged `SNAPSHOT_MARGIN_S` before the report arrived: an acknowledged message
is stored. A tick says the count still stands unless a new count follows it (Mosquitto
sends the uptime first), so a tick moves "since" only once `TICK_SETTLE_S` passed with
no new count. What is counted twice only makes the backfill wait a little early.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from device_sim import wire
from device_sim.link import Hub, Link, LinkConfig
from telemetry.connection import MqttSettings

log = logging.getLogger("device_sim")
STORED = "$SYS/broker/store/messages/count"
RETAINED = "$SYS/broker/retained messages/count"
# Mosquitto publishes a $SYS figure only when it changed, but uptime every interval: a
# tick without a new count means the count still stands
TICK = "$SYS/broker/uptime"
FIRST_FIGURE_S = 12.0  # Mosquitto's default sys_interval is 10 s
UNKNOWN = 1 << 62  # no figure yet: assume full, wait for one
SNAPSHOT_MARGIN_S = 0.5  # longer than a $SYS report takes to reach us on a loaded host
TICK_SETTLE_S = 0.2  # a new count comes right behind its tick, in the same burst


class BrokerBacklog:
    """Watches the broker's queued-message count over its `$SYS` topics."""

    def __init__(
        self,
        mqtt: MqttSettings,
        client_id: str,
        published: Callable[[], int],
        acked: Callable[[], int],
    ) -> None:
        addr = mqtt.address()
        self.published = published  # our messages so far
        self.acked = acked  # of them, acknowledged by the broker (so stored there)
        self.stored: int | None = None
        self.retained: int | None = None
        self._published_at_figure = 0  # of our messages, how many the figure surely counts
        self._tick: tuple[float, int] | None = None  # a tick's time and coverage, not yet applied
        # (monotonic time, acknowledged) samples: what the broker surely held a moment ago
        self._acked_history: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self.hub = Hub()
        self.link = Link(
            self.hub,
            LinkConfig(
                host=addr.host,
                port=addr.port,
                client_id=client_id,
                username=mqtt.username,
                password=mqtt.password.get_secret_value() if mqtt.password else None,
            ),
            on_message=self._on_message,
        )
        self.link.connect()
        self.link.subscribe(STORED, qos=0)
        self.link.subscribe(RETAINED, qos=0)
        self.link.subscribe(TICK, qos=0)
        self.link.flush()
        self.since = time.monotonic()
        self._warned = False

    def _sample(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._acked_history.append((now, self.acked()))
            # keep one sample older than the margin: it is the one a figure reads
            while (
                len(self._acked_history) > 1
                and self._acked_history[1][0] <= now - SNAPSHOT_MARGIN_S
            ):
                self._acked_history.popleft()

    def _covered_by_figure(self) -> int:
        """How many of our messages the figure arriving now surely counts."""
        cutoff = time.monotonic() - SNAPSHOT_MARGIN_S
        with self._lock:
            covered = 0
            for at, acked in self._acked_history:
                if at > cutoff:
                    break
                covered = acked
        return covered

    def _on_message(self, _link: Link, msg: wire.Incoming) -> None:
        if msg.topic == TICK:
            self._tick = (time.monotonic(), self._covered_by_figure())
            return
        try:
            value = int(msg.payload)
        except ValueError:
            return
        if msg.topic == STORED:
            self._published_at_figure = self._covered_by_figure()
            self._tick = None
            self.stored = value
        elif msg.topic == RETAINED:
            self.retained = value

    def backlog(self) -> int | None:
        """Messages the broker holds for subscribers (at most: see the module), UNKNOWN
        until the first figure, None when the broker publishes none."""
        self.link.flush()  # keepalive
        self._sample()
        tick = self._tick
        if tick is not None and time.monotonic() - tick[0] >= TICK_SETTLE_S:
            self._tick = None  # no new count came behind it: the count still stands
            self._published_at_figure = tick[1]
        if self.stored is None:
            if time.monotonic() - self.since < FIRST_FIGURE_S:
                return UNKNOWN
            if not self._warned:
                self._warned = True
                log.warning(
                    "the broker publishes no $SYS/broker/store/messages/count: backfill runs "
                    "at the broker's pace, not the engine's"
                )
            return None
        since = self.published() - self._published_at_figure
        return max(0, self.stored - (self.retained or 0)) + since

    def close(self) -> None:
        self.link.close(timeout=1)
        self.hub.close()
