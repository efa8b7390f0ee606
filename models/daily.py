"""A day of telemetry reduced per device: the input of filter-life and health scoring.

Each device type declares a few windowed queries (`Query`): a filter on the readings and
the metrics to summarise (count, mean, min, max). The same declaration runs in two places
that must agree:
* against the time-series store (`from_store`), one `TelemetryStore.aggregate` call per
  query for the whole fleet, which is what the scoring pass reads;
* over arrays of readings held in memory (`DayReducer`), which is how the evaluation
  harness reduces a simulated year without writing it to a store first.
A test writes the same readings both ways and compares the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from telemetry.store import TelemetryStore

Where = tuple[tuple[str, str, float], ...]


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    metrics: tuple[str, ...]
    where: Where = ()


def _level(level: int) -> Query:
    band: Where = (("fan_level", ">", level - 0.5), ("fan_level", "<", level + 0.5))
    return Query(f"l{level}", ("pm25", "motor_current_ma"), band)


AC_CIRCUIT = (
    "compressor_hz",
    "outdoor_temp_c",
    "room_temp_c",
    "supply_air_temp_c",
    "power_w",
    "suction_pressure_kpa",
    "discharge_pressure_kpa",
    "indoor_fan_rpm",
)


def _running(name: str, coil: tuple[str, str, float]) -> Query:
    return Query(name, AC_CIRCUIT, (("compressor_hz", ">", 0.0), coil))


QUERIES: Mapping[str, tuple[Query, ...]] = {
    # the captured dose needs the airflow, which depends on the fan level: so per level
    "purifier": (
        *(_level(level) for level in range(1, 6)),
        Query("all", ("filter_used_hours", "pm25")),
    ),
    "water_purifier": (
        Query(
            "all",
            (
                "volume_total_l",
                "tds_in_ppm",
                "tds_out_ppm",
                "flow_lpm",
                "filter_life_sediment_pct",
                "filter_life_carbon_pct",
                "filter_life_ro_pct",
                "pressure_kpa",
                "pump_current_ma",
            ),
        ),
    ),
    # the return-air filter: fan hours, and the compressor's Hz-hours against the lift
    # while running (its supply-air ΔT per Hz does not move with the dust load: less
    # air, but also less heat moved; the Hz the home's load needs does)
    # the refrigerant circuit, separately while cooling (a cold indoor coil) and heating
    # (a hot one): what the health model's physical relations read
    "air_conditioner": (
        Query("all", ("filter_used_hours", "room_temp_c")),
        _running("cool", ("coil_temp_c", "<", 18.0)),
        _running("heat", ("coil_temp_c", ">", 25.0)),
    ),
}
STATS = ("count", "mean", "min", "max")


@dataclass
class DayStats:
    """Columns named `<query>.<metric>.<stat>` (count, mean, min, max), one row per
    device of `device_ids`; NaN where the device had no such reading that day."""

    device_type: str
    device_ids: list[str]
    start_ms: int
    end_ms: int
    columns: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    def col(self, query: str, metric: str, stat: str) -> NDArray[np.float64]:
        key = f"{query}.{metric}.{stat}"
        if key not in self.columns:
            self.columns[key] = np.full(len(self.device_ids), np.nan)
        return self.columns[key]

    def seen(self) -> NDArray[np.bool_]:
        """Devices that reported at all that day."""
        first = next(q for q in QUERIES[self.device_type] if q.name == "all")
        return np.asarray(self.col(first.name, first.metrics[0], "count") > 0)


async def from_store(
    store: TelemetryStore,
    device_type: str,
    device_ids: Sequence[str],
    start_ms: int,
    end_ms: int,
    queries: Sequence[Query] | None = None,
) -> DayStats:
    """The window's stats of these devices, read with one aggregate query per `Query`
    (default: the type's own, `QUERIES`)."""
    stats = DayStats(device_type, list(device_ids), start_ms, end_ms)
    index = {d: i for i, d in enumerate(stats.device_ids)}
    for q in queries if queries is not None else QUERIES[device_type]:
        found = await store.aggregate(
            device_type, start_ms, end_ms, list(q.metrics), device_ids, list(q.where) or None
        )
        cols = {(m, s): stats.col(q.name, m, s) for m in q.metrics for s in STATS}
        for device_id, per_metric in found.items():
            i = index.get(device_id)
            if i is None:
                continue
            for m, agg in per_metric.items():
                cols[(m, "count")][i] = agg.count
                for s in ("mean", "min", "max"):
                    value = getattr(agg, s)
                    cols[(m, s)][i] = np.nan if value is None else float(value)
        for m in q.metrics:
            counts = cols[(m, "count")]
            counts[np.isnan(counts)] = 0
    return stats


_OPS = {">": np.greater, "<": np.less}


class DayReducer:
    """Accumulates readings given as arrays (one element per device, NaN for missing)
    and gives the day's `DayStats`, exactly as `from_store` would read them."""

    def __init__(
        self,
        device_type: str,
        device_ids: Sequence[str],
        queries: Sequence[Query] | None = None,
    ) -> None:
        self.device_type = device_type
        self.device_ids = list(device_ids)
        self.queries = tuple(queries) if queries is not None else QUERIES[device_type]
        n = len(self.device_ids)
        self._sums: dict[str, NDArray[np.float64]] = {}
        # per query, one (metrics x devices) array per statistic, so a reading round is a
        # few array operations per query, not per metric: the simulator's evaluation
        # calls `add` once per device type and round, millions of times a simulated year.
        # `_sums` holds views of their rows, by name.
        self._blocks: list[tuple[NDArray[np.float64], ...]] = []
        self._n = n
        self.start_ms: int | None = None
        self.end_ms = 0
        for q in self.queries:
            k = len(q.metrics)
            block: tuple[NDArray[np.float64], ...] = (
                np.zeros((k, n)),
                np.zeros((k, n)),
                np.full((k, n), np.inf),
                np.full((k, n), -np.inf),
            )
            self._blocks.append(block)
            for j, m in enumerate(q.metrics):
                for s, arr in zip(("count", "sum", "min", "max"), block, strict=True):
                    self._sums[f"{q.name}.{m}.{s}"] = arr[j]

    def add(self, ts_ms: int, columns: Mapping[str, NDArray[np.float64]]) -> None:
        if self.start_ms is None:
            self.start_ms = ts_ms
        self.end_ms = ts_ms + 1
        for q, (count, total, low, high) in zip(self.queries, self._blocks, strict=True):
            values = np.array([columns[m] for m in q.metrics], dtype=np.float64)
            ok = ~np.isnan(values)
            for metric, op, value in q.where:
                with np.errstate(invalid="ignore"):
                    ok &= _OPS[op](columns[metric], value)
            np.add(count, ok, out=count)
            np.add(total, values, out=total, where=ok)
            np.minimum(low, values, out=low, where=ok)
            np.maximum(high, values, out=high, where=ok)

    def stats(self) -> DayStats:
        out = DayStats(self.device_type, self.device_ids, self.start_ms or 0, self.end_ms)
        for q in self.queries:
            for m in q.metrics:
                key = f"{q.name}.{m}"
                count = self._sums[key + ".count"]
                some = count > 0
                out.columns[key + ".count"] = count.copy()
                with np.errstate(invalid="ignore", divide="ignore"):
                    out.columns[key + ".mean"] = np.where(
                        some, self._sums[key + ".sum"] / count, np.nan
                    )
                out.columns[key + ".min"] = np.where(some, self._sums[key + ".min"], np.nan)
                out.columns[key + ".max"] = np.where(some, self._sums[key + ".max"], np.nan)
        return out

    def reset(self) -> None:
        self.__init__(self.device_type, self.device_ids, self.queries)  # type: ignore[misc]
