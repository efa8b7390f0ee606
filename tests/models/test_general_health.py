"""Health from data alone: any profile's numeric metrics become one number a day each,
and each device's own detector, started at its install, tells a fault from its normal."""

from __future__ import annotations

import numpy as np

from models.anomaly import fleet as general
from models.daily import DayReducer
from models.evaluation.faults import FaultRun
from models.evaluation.filter_life import DAY_S
from models.evaluation.general import NO_FAULT, general_quality
from telemetry.profile import shipped

START = 1_798_761_600.0  # 2027-01-01 UTC


def test_a_gauge_is_its_daily_mean_and_a_counter_its_daily_growth() -> None:
    profile = shipped()["purifier"]
    chosen = general.metrics(profile, reported={"pm25", "filter_used_hours"})
    assert chosen == [("pm25", False), ("filter_used_hours", True)]
    reducer = DayReducer("purifier", ["a", "b"], (general.query(chosen),))
    for hour, (pm, used) in enumerate([(10.0, 100.0), (20.0, 105.0), (30.0, 112.0)]):
        reducer.add(
            int((START + hour * 3600) * 1000),
            {"pm25": np.array([pm, np.nan]), "filter_used_hours": np.array([used, np.nan])},
        )
    day = general.features(reducer.stats(), chosen)
    np.testing.assert_allclose(day[0], [20.0, 12.0])
    assert np.isnan(day[1]).all()  # a device that sent nothing: no evidence


def test_a_day_a_device_was_mostly_silent_is_missing_not_a_biased_mean() -> None:
    """Three devices report pm2.5 every hour with a daily rhythm; one was offline from
    noon to three: the mean of what came would be a false step, so its day is missing."""
    profile = shipped()["purifier"]
    chosen = general.metrics(profile, reported={"pm25"})
    reducer = DayReducer("purifier", ["a", "b", "c"], (general.query(chosen),))
    for hour in range(24):
        pm = 20.0 + 10.0 * np.sin(np.pi * hour / 24)
        gap = 12 <= hour < 15
        reducer.add(
            int((START + hour * 3600) * 1000), {"pm25": np.array([pm, pm, np.nan if gap else pm])}
        )
    day = general.features(reducer.stats(), chosen)
    assert day[0, 0] == day[1, 0] and np.isnan(day[2, 0])
    assert not np.isnan(general.features(reducer.stats(), chosen, coverage=0.8)[2, 0])


def test_metrics_a_sensor_measures_are_watched_and_settings_are_conditions() -> None:
    ac = shipped()["air_conditioner"]
    chosen = general.metrics(ac, reported={"setpoint_c", "room_temp_c", "filter_used_hours"})
    assert general.watched(ac, chosen) == [False, True, False]


def run_with(days: int, values: np.ndarray, faults: list[tuple[str, float] | None]) -> FaultRun:
    """A water purifier fleet's days as the general detector reads them."""
    return FaultRun(
        start=START,
        days=days,
        device_ids={"water_purifier": [f"w{i}" for i in range(values.shape[1])]},
        history={},
        faults={"water_purifier": faults},
        seconds=0.0,
        installed={"water_purifier": np.full(values.shape[1], START)},
        daily={"water_purifier": list(values)},
    )


def test_a_fault_that_shifts_a_metric_is_found_and_a_healthy_fleet_stays_quiet() -> None:
    rng = np.random.default_rng(3)
    days, devices = 200, 30
    # pressure and the pump's current move together; each unit has its own level
    level = rng.uniform(200, 300, devices)
    pressure = level + rng.normal(0, 3, (days, devices))
    current = 2.0 * pressure + rng.normal(0, 4, (days, devices))
    values = np.stack([pressure, current], axis=2)
    onset = START + 150.5 * DAY_S
    values[151:, 0, 1] -= 60  # device 0: the pump draws far less for the same pressure
    faults: list[tuple[str, float] | None] = [("pump_failure", onset)] + [None] * (devices - 1)
    quality = general_quality(run_with(days, values, faults))
    pump = next(k for k in quality.kinds if k.kind == "pump_failure")
    assert pump.faults == 1 and pump.detected == 1 and pump.within(48) == 1.0
    quiet = next(k for k in quality.kinds if k.kind == NO_FAULT)
    assert quiet.false_alerts <= 2
    assert quality.healthy_device_days == 29 * 200 + 150.5  # the faulty unit until its onset


def test_a_family_known_only_from_its_profile_is_judged_on_a_fleet_of_its_own() -> None:
    """The evaluation's fleet of the families no physics knows: their generic faults are
    injected and judged by the general detector; the health model is not asked."""
    from datetime import UTC, datetime

    from models.evaluation.faults import simulate_faults
    from models.evaluation.protocol import new_families

    assert new_families() == ["dehumidifier"]
    run = simulate_faults(
        40,
        seed=3,
        days=40,
        start=datetime(2027, 4, 1, tzinfo=UTC),
        faulty_share=0.5,
        mix=dict.fromkeys(new_families(), 1.0),
    )
    assert set(run.faults) == {"dehumidifier"} and run.history["dehumidifier"] == []
    assert sum(f is not None for f in run.faults["dehumidifier"]) >= 10
    q = general_quality(run)
    kinds = {k.kind for k in q.kinds if k.device_type == "dehumidifier"}
    assert {"sensor_stuck", "step_change", "broken_relation", NO_FAULT} <= kinds
    assert q.healthy_device_days > 500


def pump_fleet(seed: int, devices: int = 48, days: int = 160) -> FaultRun:
    """Water purifiers: a third lose their pump (it draws far less for the same
    pressure), a third moved to a house with stronger mains (both rise together: no
    fault, but the detector sees a level jump), a third stay as they were."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(200, 300, devices)
    pressure = level + rng.normal(0, 3, (days, devices))
    current = 2.0 * pressure + rng.normal(0, 4, (days, devices))
    faults: list[tuple[str, float] | None] = []
    for i in range(devices):
        at = int(rng.integers(100, 140))
        if i % 3 == 0:
            current[at:, i] -= 60
            faults.append(("pump_failure", START + (at - 0.5) * DAY_S))
            continue
        if i % 3 == 1:
            pressure[at:, i] += 40
            current[at:, i] += 80
        faults.append(None)
    return run_with(days, np.stack([pressure, current], axis=2), faults)


def test_verdicts_on_the_training_fleets_alarms_dismiss_alarms_that_were_nothing() -> None:
    """Trained on what technicians found at each alarm of two fleets, the namer keeps the
    pump failures of a third and dismisses the level jumps that were a move."""
    from models.evaluation.general import fleet_alarms, train_namers

    namers = train_namers([pump_fleet(seed=1), pump_fleet(seed=2)])
    assert namers["water_purifier"].fitted
    run = pump_fleet(seed=3)
    found = fleet_alarms(run)
    alone = general_quality(run, found=found)
    named = general_quality(run, namers=namers, found=found)
    assert alone.healthy_alerts >= 8  # the moves
    assert named.healthy_alerts <= alone.healthy_alerts // 4
    # every pump failure the detector found is still found, now named
    pump = next(k for k in named.kinds if k.kind == "pump_failure")
    found_alone = next(k for k in alone.kinds if k.kind == "pump_failure")
    assert pump.faults == 16 and pump.detected == found_alone.detected >= 4
    assert pump.false_alerts == 0
