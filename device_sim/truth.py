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


@dataclass
class DeviceTruth:
    device_id: str
    device_type: str
    region: str
    smoker: bool
    capacity: dict[str, float]  # this unit's filter capacities and feed water
    exhaustions: list[Exhaustion] = field(default_factory=list)  # a stage became spent
    replacements: list[Exhaustion] = field(default_factory=list)  # a new one went in


@dataclass
class GroundTruth:
    devices: dict[str, DeviceTruth] = field(default_factory=dict)
    published: int = 0  # telemetry messages acknowledged by the broker

    def save(self, path: Path) -> None:
        """One JSON object per device per line, then a summary line."""
        lines = [orjson.dumps(asdict(d)) for d in self.devices.values()]
        lines.append(orjson.dumps({"summary": {"published": self.published}}))
        path.write_bytes(b"\n".join(lines) + b"\n")

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        truth = cls()
        for line in path.read_bytes().splitlines():
            doc = orjson.loads(line)
            if "summary" in doc:
                truth.published = int(doc["summary"]["published"])
                continue
            doc["exhaustions"] = [Exhaustion(**e) for e in doc["exhaustions"]]
            doc["replacements"] = [Exhaustion(**e) for e in doc["replacements"]]
            d = DeviceTruth(**doc)
            truth.devices[d.device_id] = d
        return truth
