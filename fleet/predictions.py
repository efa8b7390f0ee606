"""Predicted filter exhaustions: when each filter stage of a device will be spent.

The models' daily scoring pass writes them here (so can any other source: `fleetcare
orders predictions`); the rules, the parts forecast and the API read them. One row per
device and stage, replaced by the next prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from db.database import Database
from db.tables import devices, filter_predictions
from db.upsert import insert_for
from fleet.errors import FleetError


class BadPrediction(FleetError):
    pass


# the source of a date that is a reminder from the fleet's typical use: the unit never
# reported its usage (the consumer app shows it as an estimate)
TYPICAL_USE = "typical_use"


@dataclass(frozen=True, slots=True)
class PredictedExhaustion:
    """A filter stage of a device predicted spent at `exhausted_at`."""

    device_id: str
    stage: str  # "main" for a purifier; sediment / carbon / ro for a water purifier
    exhausted_at: datetime
    probability: float = 1.0  # that it is spent by then
    source: str = "model"
    low: datetime | None = None  # the band: spent no earlier than (by the model's coverage)
    high: datetime | None = None  # and no later than
    consumed: float | None = None  # share of the stage used up now
    rated_at: datetime | None = None  # when rated life says it is spent (the baseline)
    model_version: str | None = None


class Predictions:
    """The interface predictions come in by: the models' scoring pass writes here."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, items: Iterable[PredictedExhaustion], *, now: datetime | None = None) -> int:
        """Store predictions, replacing older ones for the same device and stage. All or
        nothing: a bad one (probability outside 0–1, naive time, unknown device) is
        refused with the reason."""
        now = now or datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for i, p in enumerate(items):
            if not 0.0 <= p.probability <= 1.0:
                raise BadPrediction(f"prediction {i} ({p.device_id}): probability must be 0–1")
            if any(t is not None and t.tzinfo is None for t in (p.low, p.high, p.rated_at)):
                raise BadPrediction(f"prediction {i} ({p.device_id}): times need a zone")
            if p.exhausted_at.tzinfo is None:
                raise BadPrediction(f"prediction {i} ({p.device_id}): exhausted_at needs a zone")
            rows.append(
                {
                    "device_id": p.device_id,
                    "stage": p.stage,
                    "exhausted_at": p.exhausted_at,
                    "probability": p.probability,
                    "source": p.source,
                    "updated_at": now,
                    "low": p.low,
                    "high": p.high,
                    "consumed": p.consumed,
                    "rated_at": p.rated_at,
                    "model_version": p.model_version,
                }
            )
        if not rows:
            return 0
        with self.db.engine.begin() as conn:
            known = set(
                conn.execute(
                    sa.select(devices.c.id).where(devices.c.id.in_({r["device_id"] for r in rows}))
                ).scalars()
            )
            unknown = sorted({r["device_id"] for r in rows} - known)
            if unknown:
                raise BadPrediction(f"unknown devices: {', '.join(unknown[:10])}")
            stmt = insert_for(conn, filter_predictions)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["device_id", "stage"],
                    set_={
                        c: stmt.excluded[c]
                        for c in (
                            "exhausted_at",
                            "probability",
                            "source",
                            "updated_at",
                            "low",
                            "high",
                            "consumed",
                            "rated_at",
                            "model_version",
                        )
                    },
                ),
                rows,
            )
        return len(rows)

    def for_devices(self, device_ids: Sequence[str]) -> list[PredictedExhaustion]:
        """The current predictions of these devices (every stage)."""
        fp = filter_predictions
        out: list[PredictedExhaustion] = []
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                rows = conn.execute(sa.select(fp).where(fp.c.device_id.in_(ids[i : i + 5000])))
                out += [
                    PredictedExhaustion(
                        r.device_id,
                        r.stage,
                        r.exhausted_at,
                        r.probability,
                        r.source,
                        r.low,
                        r.high,
                        r.consumed,
                        r.rated_at,
                        r.model_version,
                    )
                    for r in rows
                ]
        return out
