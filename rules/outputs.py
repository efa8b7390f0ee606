"""Model outputs as rule inputs: the interface `prediction` conditions read.

A source answers, for a batch of devices, `{device_id: {(model, output): value}}`:
* `FilterLifeOutputs` reads the predicted exhaustions stored through
  `service.parts_forecast.Predictions` and offers `filter_life` /
  `days_to_exhaustion_{stage}`;
* `ScoreOutputs` reads the scores the scoring pass stores in `model_scores`: `anomaly` /
  `score` and one output per fault kind (1 = the model's learned threshold);
* `Outputs` of several sources merge with `CombinedOutputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from db.database import Database
from db.tables import model_scores
from fleet.predictions import Predictions

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


class ScoreOutputs:
    """Every stored model score of the devices, as `(model, output)`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def values(self, device_ids: Sequence[str], now: datetime) -> Outputs:
        out: Outputs = {}
        ms = model_scores
        with self.db.engine.connect() as conn:
            for i in range(0, len(device_ids), 5000):
                chunk = list(device_ids[i : i + 5000])
                for r in conn.execute(
                    sa.select(ms.c.device_id, ms.c.model, ms.c.output, ms.c.value).where(
                        ms.c.device_id.in_(chunk)
                    )
                ):
                    out.setdefault(r.device_id, {})[(r.model, r.output)] = r.value
        return out


class CombinedOutputs:
    def __init__(self, *sources: ModelOutputs) -> None:
        self.sources = sources

    def values(self, device_ids: Sequence[str], now: datetime) -> Outputs:
        out: Outputs = {}
        for source in self.sources:
            for device_id, row in source.values(device_ids, now).items():
                out.setdefault(device_id, {}).update(row)
        return out


def engine_outputs(db: Database) -> ModelOutputs:
    """What the engine's rules read: filter-life dates and the health scores."""
    return CombinedOutputs(FilterLifeOutputs(db), ScoreOutputs(db))


class StaticOutputs:
    """Fixed values (tests, replays)."""

    def __init__(self, values: Outputs) -> None:
        self._values = values

    def values(self, device_ids: Sequence[str], now: datetime) -> Outputs:
        return {d: self._values[d] for d in device_ids if d in self._values}
