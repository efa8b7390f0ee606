"""Model outputs as rule inputs: the interface `prediction` conditions read.

A source answers, for a batch of devices, `{device_id: {(model, output): value}}`. The
models issue adds its estimators (anomaly scores with their learned thresholds) as
sources; today the filter-life source reads the predicted exhaustions stored through
`workorders.parts_forecast.Predictions` and offers `days_to_exhaustion_{stage}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from workorders.db import Database
from workorders.parts_forecast import Predictions

Outputs = dict[str, dict[tuple[str, str], float]]


class ModelOutputs(Protocol):
    def values(self, device_ids: Sequence[str], now: datetime) -> Outputs: ...


class FilterLifeOutputs:
    """`filter_life` / `days_to_exhaustion_<stage>` (negative: already past)."""

    def __init__(self, db: Database) -> None:
        self.predictions = Predictions(db)

    def values(self, device_ids: Sequence[str], now: datetime) -> Outputs:
        out: Outputs = {}
        for p in self.predictions.for_devices(device_ids):
            days = (p.exhausted_at - now).total_seconds() / 86400
            out.setdefault(p.device_id, {})[("filter_life", f"days_to_exhaustion_{p.stage}")] = (
                round(days, 3)
            )
        return out


class StaticOutputs:
    """Fixed values (tests, replays)."""

    def __init__(self, values: Outputs) -> None:
        self._values = values

    def values(self, device_ids: Sequence[str], now: datetime) -> Outputs:
        return {d: self._values[d] for d in device_ids if d in self._values}
