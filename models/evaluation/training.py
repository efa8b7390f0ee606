"""Models trained on simulated fleets, labelled by the simulator's ground truth, and saved
as registry versions with the data window and seed they came from.

`fleetcare train` and the demo train this way until a fleet has field labels of its own
(technicians' verdicts and replaced filters join the training as `labels`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from models.evaluation.faults import FaultRun, simulate_faults
from models.evaluation.filter_life import SimRun, simulate
from models.filter_life import FilterLife, Snapshots, schema
from models.health import FieldLabels, HealthModel
from models.health import full_schema as health_schema
from models.registry import ModelRegistry, ModelVersion

FILTER_LIFE = "filter_life"  # the models' names in the registry
HEALTH = "health"
START = datetime(2026, 1, 1, tzinfo=UTC)  # the simulated fleets' first day by default

Progress = Callable[[int], None]  # told how many simulated days are done


def train_filter_life(
    devices: int,
    days: int,
    seed: int,
    *,
    progress: Progress | None = None,
    labels: Mapping[tuple[str, str], Snapshots] | None = None,
) -> tuple[FilterLife, dict[str, float], SimRun]:
    """A filter-life model fitted on a simulated fleet's year (plus any field labels)."""
    run = simulate(devices, seed=seed, days=days, start=START, progress=progress)
    model = FilterLife().fit(run.snapshots, labels=labels)
    metrics = {f"{t}.{s}.rows": float(m.rows) for (t, s), m in model.stages.items()}
    metrics |= {f"{t}.{s}.field_labels": float(n) for (t, s), n in model.label_rows.items()}
    return model, metrics, run


def train_health(
    devices: int,
    days: int,
    seed: int,
    *,
    start: datetime = START,
    progress: Progress | None = None,
    labels: Mapping[str, FieldLabels] | None = None,
) -> tuple[HealthModel, dict[str, float], FaultRun]:
    """The health model, fitted on a simulated fleet with faults injected into half of
    its devices, from `start` (the seasons it sees)."""
    run = simulate_faults(devices, seed=seed, days=days, start=start, progress=progress)
    model = HealthModel().fit(run.history, labels=labels)
    metrics = {
        f"{t}.device_days": float(len(h) * len(run.device_ids[t])) for t, h in run.history.items()
    }
    metrics |= {f"{t}.field_labels": float(n) for t, n in model.label_rows.items()}
    return model, metrics, run


def save_filter_life(
    registry: ModelRegistry,
    model: FilterLife,
    metrics: Mapping[str, float],
    *,
    devices: int,
    days: int,
    seed: int,
    activate: bool = True,
) -> ModelVersion:
    """Save a version made by `train_filter_life`, with its data window."""
    return registry.save(
        FILTER_LIFE,
        model,
        features=schema(),
        data_start=START,
        data_end=START + timedelta(days=days),
        metrics=metrics,
        params={"sim_devices": devices, "sim_days": days, "seed": seed},
        activate=activate,
    )


def save_health(
    registry: ModelRegistry,
    model: HealthModel,
    metrics: Mapping[str, float],
    run: FaultRun,
    *,
    seed: int,
    activate: bool = True,
) -> ModelVersion:
    """Save a version made by `train_health`, with its data window."""
    start = datetime.fromtimestamp(run.start, UTC)
    return registry.save(
        HEALTH,
        model,
        features=health_schema(),
        data_start=start,
        data_end=start + timedelta(days=run.days),
        metrics=metrics,
        params={
            "sim_devices": sum(len(v) for v in run.device_ids.values()),
            "sim_days": run.days,
            "seed": seed,
        },
        activate=activate,
    )
