"""Replay dead letters through today's validation (after fixing a device, a limit, the
registry): what passes is stored and marked replayed, what fails keeps its new reason."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleet.state import DeviceStateRepository, StateUpdate
from ingest.dead_letters import REPLAYED, DeadLetter, DeadLetterRepository
from ingest.decode import Decoded, Decoder, Ignored, Reject, Rejected, StatusChange
from ingest.processor import RegistryCache
from telemetry.records import Event, Reading
from telemetry.store import TelemetryStore


@dataclass
class ReplayReport:
    stored: list[int] = field(default_factory=list)
    still_rejected: list[tuple[int, str, str]] = field(default_factory=list)


def _check_registered(d: Decoded, types: dict[str, str | None]) -> Decoded:
    if not isinstance(d, Reading | Event):
        return d
    registered = types.get(d.device_id)
    if registered is None:
        return Rejected(Reject.UNREGISTERED, f"device {d.device_id!r} is not registered")
    if registered != d.device_type:
        return Rejected(
            Reject.TYPE_MISMATCH, f"device {d.device_id!r} is registered as {registered}"
        )
    return d


async def replay(
    letters: list[DeadLetter],
    *,
    decoder: Decoder,
    store: TelemetryStore,
    dead_letters: DeadLetterRepository,
    state: DeviceStateRepository,
    registry: RegistryCache | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    report = ReplayReport()
    await store.use_types(decoder.profiles.types)  # what the decoder accepts can be stored
    now_ms = int(time.time() * 1000)
    readings: list[Reading] = []
    events: list[Event] = []
    updates: list[StateUpdate] = []
    now = datetime.now(UTC)
    decoded = [(letter, decoder.decode(letter.topic, letter.payload, now_ms)) for letter in letters]
    if registry is not None:
        ids = {d.device_id for _, d in decoded if isinstance(d, Reading | Event)}
        types = registry.types(ids) if ids else {}
        decoded = [(letter, _check_registered(d, types)) for letter, d in decoded]
    for letter, d in decoded:
        if letter.truncated:
            report.still_rejected.append(
                (letter.id, letter.reason, "payload was truncated when kept; cannot replay")
            )
        elif isinstance(d, Rejected):
            report.still_rejected.append((letter.id, d.reason.value, d.detail))
        else:
            report.stored.append(letter.id)
            if isinstance(d, Reading):
                readings.append(d)
                updates.append(
                    StateUpdate(
                        d.device_id,
                        d.device_type,
                        now,
                        messages=1,
                        last_seen_ts=d.ts,
                        boot=d.boot,
                        seq=d.seq,
                        latest_ts=d.ts,
                        metrics=dict(d.metrics),
                    )
                )
            elif isinstance(d, Event):
                events.append(d)
            elif isinstance(d, StatusChange):
                updates.append(
                    StateUpdate(
                        d.device_id, d.device_type, now, online=d.online, firmware=d.firmware
                    )
                )
            elif isinstance(d, Ignored):
                pass
    if dry_run:
        return report
    if readings or events:
        await store.write(readings, events)
    state.apply(updates)
    dead_letters.resolve(report.stored, REPLAYED)
    for letter_id, reason, detail in report.still_rejected:
        dead_letters.update_reason(letter_id, reason, detail)
    return report
