"""Ground truth: what really happened to each simulated device. Written to a file and read
by evaluation code; never sent over MQTT."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson


@dataclass(frozen=True)
class Exhaustion:
    stage: str  # "main" for a purifier; sediment / carbon / ro for a water purifier
    at: float  # epoch seconds


@dataclass(frozen=True)
class FaultTruth:
    kind: str
    onset: float  # epoch s
    progression_days: float  # from onset to full severity


@dataclass
class DeviceTruth:
    device_id: str
    device_type: str
    region: str
    smoker: bool
    capacity: dict[str, float]  # this unit's filter capacities and feed water
    exhaustions: list[Exhaustion] = field(default_factory=list)  # a stage became spent
    replacements: list[Exhaustion] = field(default_factory=list)  # a new one went in
    outages: list[list[float]] = field(default_factory=list)  # [start, end] epoch s, offline
    dropped: int = 0  # readings lost from the full on-device buffer
    clock_skew_ms: int = 0
    faults: list[FaultTruth] = field(default_factory=list)
    repairs: list[Exhaustion] = field(default_factory=list)  # stage = the fault repaired
    error_codes: list[list[str | float]] = field(default_factory=list)  # [code, epoch s]
    # imperfection (device_sim.imperfection)
    installed_at: float | None = None  # installed during the run; None: before it
    unit: dict[str, float] = field(default_factory=dict)  # off its datasheet; sensor errors
    gaps: list[list[float]] = field(default_factory=list)  # [start, end] epoch s: nothing sent
    unsent: int = 0  # readings lost in those gaps, or one by one
    home_changes: list[list[str | float]] = field(default_factory=list)  # [kind, epoch s]


@dataclass
class GroundTruth:
    devices: dict[str, DeviceTruth] = field(default_factory=dict)
    published: int = 0  # distinct valid telemetry messages acknowledged by the broker
    duplicates: int = 0  # extra copies sent (chaos)
    out_of_order: int = 0  # messages sent after a later one (chaos)
    malformed: dict[str, int] = field(default_factory=dict)  # by kind (chaos)
    dropped: int = 0  # readings lost from full device buffers during outages
    still_buffered: int = 0  # readings still held by devices offline when the run ended
    events: int = 0  # error-code events acknowledged by the broker
    unsent: int = 0  # readings never sent: telemetry gaps and lost readings (imperfection)

    def save(self, path: Path) -> None:
        """One JSON object per device per line, then a summary line."""
        lines = [orjson.dumps(asdict(d)) for d in self.devices.values()]
        lines.append(
            orjson.dumps(
                {
                    "summary": {
                        "published": self.published,
                        "duplicates": self.duplicates,
                        "out_of_order": self.out_of_order,
                        "malformed": self.malformed,
                        "dropped": self.dropped,
                        "still_buffered": self.still_buffered,
                        "events": self.events,
                        "unsent": self.unsent,
                    }
                }
            )
        )
        path.write_bytes(b"\n".join(lines) + b"\n")

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        truth = cls()
        for line in path.read_bytes().splitlines():
            doc = orjson.loads(line)
            if "summary" in doc:
                summary = doc["summary"]
                truth.published = int(summary["published"])
                truth.duplicates = int(summary.get("duplicates", 0))
                truth.out_of_order = int(summary.get("out_of_order", 0))
                truth.malformed = dict(summary.get("malformed", {}))
                truth.dropped = int(summary.get("dropped", 0))
                truth.still_buffered = int(summary.get("still_buffered", 0))
                truth.events = int(summary.get("events", 0))
                truth.unsent = int(summary.get("unsent", 0))
                continue
            doc["exhaustions"] = [Exhaustion(**e) for e in doc["exhaustions"]]
            doc["replacements"] = [Exhaustion(**e) for e in doc["replacements"]]
            doc["faults"] = [FaultTruth(**f) for f in doc.get("faults", [])]
            doc["repairs"] = [Exhaustion(**e) for e in doc.get("repairs", [])]
            d = DeviceTruth(**doc)
            truth.devices[d.device_id] = d
        return truth
