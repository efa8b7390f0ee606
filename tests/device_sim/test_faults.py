"""Injected faults change what devices measure, as the physics says they would."""

from __future__ import annotations

import numpy as np

from device_sim.air_conditioner import AirConditioners
from device_sim.environment import DAY_S
from device_sim.faults import FAULTS, FaultPlan, kinds_for
from device_sim.fleet import Fleet, FleetSpec
from device_sim.purifier import Purifiers
from device_sim.water_purifier import WaterPurifiers

T0 = 1_767_225_600.0
JULY_EVENING = T0 + 190 * DAY_S + 19 * 3600


def twins(model_cls: type, n: int = 10, seed: int = 1) -> tuple[object, object]:
    """Two identical sets of devices: healthy, and the same with a fault."""

    def make() -> object:
        rng = np.random.default_rng(seed)
        if model_cls is Purifiers:
            return Purifiers.create(n, rng)
        region = np.zeros(n, dtype=int)
        return model_cls.create(region, rng)

    return make(), make()


def cooling_twins() -> tuple[AirConditioners, AirConditioners]:
    """Two identical ACs cooling hard on a July evening: one stays healthy."""
    healthy, faulty = twins(AirConditioners)
    assert isinstance(healthy, AirConditioners) and isinstance(faulty, AirConditioners)
    for ac in (healthy, faulty):
        ac.step(JULY_EVENING, 300.0)
        ac.mode[:] = 1
        ac.freq[:] = 80.0
    return healthy, faulty


def test_every_device_type_has_faults_and_every_fault_a_type() -> None:
    for device_type in ("purifier", "water_purifier", "air_conditioner"):
        assert kinds_for(device_type)
    assert len({f.name for f in FAULTS}) == len(FAULTS)


def test_a_refrigerant_leak_cuts_capacity_and_suction_pressure() -> None:
    healthy, leaking = cooling_twins()
    leaking.faults = {"refrigerant_leak": np.ones(10)}
    assert np.all(leaking.capacity_kw() < 0.5 * healthy.capacity_kw())
    h, lk = healthy.metrics(), leaking.metrics()
    assert np.all(lk["suction_pressure_kpa"] < h["suction_pressure_kpa"])


def test_a_fouled_condenser_raises_head_pressure_and_power() -> None:
    healthy, fouled = cooling_twins()
    fouled.faults = {"condenser_fouling": np.ones(10)}
    assert np.all(
        fouled.metrics()["discharge_pressure_kpa"] > healthy.metrics()["discharge_pressure_kpa"]
    )
    assert np.all(fouled.power_w() > healthy.power_w())


def test_purifier_motor_wear_and_sensor_faults() -> None:
    healthy, faulty = twins(Purifiers)
    assert isinstance(healthy, Purifiers) and isinstance(faulty, Purifiers)
    faulty.faults = {"motor_wear": np.ones(10)}
    assert np.all(faulty.motor_current_ma() > 1.5 * healthy.motor_current_ma() - 1e-9)
    faulty.faults = {"pm_sensor_drift": np.ones(10)}
    assert np.allclose(faulty.reported_pm25(), 2.5 * faulty.pm25)
    faulty.faults = {"pm_sensor_stuck": np.ones(10)}
    first = faulty.reported_pm25().copy()
    for i in range(12):
        faulty.step(T0 + 18 * 3600 + i * 600, 600.0, np.full(10, 80.0))
    assert np.array_equal(faulty.reported_pm25(), first)
    assert not np.allclose(faulty.pm25, first)  # the air changed; the sensor did not


def test_water_purifier_membrane_pump_and_leak_faults() -> None:
    healthy, faulty = twins(WaterPurifiers)
    assert isinstance(healthy, WaterPurifiers) and isinstance(faulty, WaterPurifiers)
    faulty.faults = {
        "ro_membrane_failure": np.ones(10),
        "pump_failure": np.ones(10),
        "leak": np.ones(10),
    }
    h, f = healthy.metrics(), faulty.metrics()
    assert np.all(f["tds_out_ppm"] > 5 * h["tds_out_ppm"])
    assert np.all(f["pressure_kpa"] < 0.5 * h["pressure_kpa"])
    assert np.all(f["pump_current_ma"] > h["pump_current_ma"])
    assert f["leak"].all() and not h["leak"].any()


def test_severity_grows_from_onset_and_a_repair_ends_it() -> None:
    plan = FaultPlan.sample(
        "air_conditioner",
        500,
        np.random.default_rng(3),
        start=T0,
        end=T0 + 365 * DAY_S,
        per_device_year=0.5,
    )
    faulty = plan.kind >= 0
    assert 0.35 < faulty.mean() < 0.65
    i = int(np.flatnonzero(faulty)[0])
    kind = plan.kinds[plan.kind[i]]
    onset = plan.onset[i]
    assert plan.severity(onset - 1)[kind.name][i] == 0
    half = plan.severity(onset + kind.progression_days * DAY_S / 2)[kind.name][i]
    assert 0.45 < half < 0.55
    assert plan.severity(onset + 2 * kind.progression_days * DAY_S)[kind.name][i] == 1
    plan.repair(np.arange(500) == i)
    assert plan.severity(onset + 400 * DAY_S)[kind.name][i] == 0


def test_fleet_faults_are_in_ground_truth_and_do_not_change_healthy_physics() -> None:
    def fleet(rate: float) -> Fleet:
        f = Fleet.create(
            FleetSpec(
                devices=60, seed=21, start=T0, faults_per_device_year=rate, fault_window_days=30
            )
        )
        f.advance(T0 + 40 * DAY_S)
        return f

    healthy, faulty = fleet(0.0), fleet(12.0)  # 12 a year over 30 days: ~all get one
    with_fault = [d for d, t in faulty.truth.devices.items() if t.faults]
    assert len(with_fault) > 40
    assert all(not t.faults for t in healthy.truth.devices.values())
    # the same seed: devices without a fault behave exactly the same in both fleets
    clean = [d for d, t in faulty.truth.devices.items() if not t.faults]
    a = {d: m for _, _, d, m, _, _ in healthy.readings()}
    b = {d: m for _, _, d, m, _, _ in faulty.readings()}
    for d in clean:
        assert a[d] == b[d]
    target = with_fault[0]
    kind = faulty.truth.devices[target].faults[0].kind
    faulty.repair([target], kind)
    assert faulty.truth.devices[target].repairs[0].stage == kind


def test_a_degraded_compressor_moves_less_heat_for_more_power_at_the_same_frequency() -> None:
    healthy, worn = cooling_twins()
    worn.faults = {"compressor_degradation": np.ones(10)}
    assert np.array_equal(worn.freq, healthy.freq)
    assert np.all(worn.capacity_kw() < 0.7 * healthy.capacity_kw())
    assert np.all(worn.power_w() > healthy.power_w())
    h, w = healthy.metrics(), worn.metrics()
    # leaky valves: the pressure ratio collapses (suction up, discharge down)
    assert np.all(w["suction_pressure_kpa"] > h["suction_pressure_kpa"])
    assert np.all(w["discharge_pressure_kpa"] < h["discharge_pressure_kpa"])


def test_a_worn_indoor_fan_bearing_slows_the_fan_and_cuts_airflow() -> None:
    healthy, worn = cooling_twins()
    worn.faults = {"fan_bearing_wear": np.ones(10)}
    assert np.all(worn.airflow_factor() < healthy.airflow_factor())
    assert np.all(worn.capacity_kw() < healthy.capacity_kw())
    rpm_h, rpm_w = healthy.metrics()["indoor_fan_rpm"], worn.metrics()["indoor_fan_rpm"]
    assert rpm_w.mean() < 0.85 * rpm_h.mean()
    assert rpm_w.std() > rpm_h.std()  # it hunts


def test_a_clogged_prefilter_cuts_airflow_and_raises_motor_current() -> None:
    healthy, clogged = twins(Purifiers)
    assert isinstance(healthy, Purifiers) and isinstance(clogged, Purifiers)
    clogged.faults = {"clogged_prefilter": np.ones(10)}
    assert np.all(clogged.cadr_m3h() <= 0.4 * healthy.cadr_m3h() + 1e-9)
    assert np.all(clogged.motor_current_ma() >= 1.25 * healthy.motor_current_ma() - 1e-9)


def test_sensor_spikes_stay_in_range_and_dropouts_are_nulls_on_the_main_sensor() -> None:
    from device_sim.faults import SENSOR_OF, apply_sensor_faults
    from telemetry.metrics import device_type

    n = 4000
    for kind in ("purifier", "water_purifier", "air_conditioner"):
        plan = FaultPlan.healthy(kind, n)
        names = [k.name for k in plan.kinds]
        half = n // 2
        plan.kind[:half] = names.index("sensor_spikes")
        plan.kind[half:] = names.index("sensor_dropout")
        plan.onset[:] = T0 - 10 * DAY_S  # fully grown
        sensor = SENSOR_OF[kind]
        row = device_type(kind).by_name[sensor]
        clean = {sensor: np.full(n, 20.0), "other": np.full(n, 1.0)}
        out = apply_sensor_faults(clean, plan, T0, np.random.default_rng(1))
        values = list(out[sensor])
        spiked = [v for v in values[:half] if v is not None and v > 20.0]
        missing = [v for v in values[half:] if v is None]
        assert 0.02 * half < len(spiked) < 0.09 * half, kind  # ~5 % at full severity
        assert all(row.minimum <= v <= row.maximum for v in spiked)  # type: ignore[operator]
        assert None not in values[:half]
        assert 0.3 * half < len(missing) < 0.5 * half, kind  # ~40 %
        assert np.array_equal(out["other"], clean["other"])  # one sensor, not the device
        # before onset nothing happens
        plan.onset[:] = T0 + DAY_S
        assert apply_sensor_faults(clean, plan, T0, np.random.default_rng(1)) is clean


def test_air_conditioners_show_error_codes_from_what_they_measure() -> None:
    from device_sim.air_conditioner import RPM_INDOOR

    healthy, faulty = cooling_twins()
    assert set(healthy.error_codes(healthy.metrics())) == {""}
    faulty.faults = {"fan_bearing_wear": np.ones(10)}
    assert set(faulty.error_codes(faulty.metrics())) == {"E4"}
    faulty.faults = {"refrigerant_leak": np.ones(10)}
    m = faulty.metrics()
    low = m["suction_pressure_kpa"] < 750
    assert list(faulty.error_codes(m)) == ["E6" if x else "" for x in low]
    faulty.faults = {}
    m = faulty.metrics()
    m["discharge_pressure_kpa"] = np.full(10, 4500.0)
    m["indoor_fan_rpm"] = np.full(10, int(0.5 * RPM_INDOOR))
    assert set(faulty.error_codes(m)) == {"P1"}  # the first in priority order


async def test_error_codes_are_events_with_the_next_seq_and_in_ground_truth() -> None:
    fleet = Fleet.create(
        FleetSpec(
            devices=60,
            seed=31,
            start=JULY_EVENING - 3 * DAY_S,
            mix={"air_conditioner": 1.0},
            faults_per_device_year=40,
            fault_window_days=2,
        )
    )
    for g in fleet.groups.values():  # grown to full severity before the run starts
        g.faults.onset = np.where(g.faults.kind >= 0, fleet.t - 100 * DAY_S, np.nan)
    seen: dict[str, list[int]] = {}
    events = []
    t = fleet.t
    for _ in range(3 * 96):
        t += 900
        fleet.advance(t)
        for _, _, device_id, _, _, seq in fleet.readings():
            seen.setdefault(device_id, []).append(seq)
        for e in fleet.events():
            events.append(e)
            seen[e[2]].append(e[5])
    assert events, "faults this strong show codes"
    assert {e[3]["code"] for e in events} <= {"P1", "E6", "E4"}
    for seqs in seen.values():  # telemetry and events share the counter, no repeats
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    in_truth = sum(len(d.error_codes) for d in fleet.truth.devices.values())
    assert in_truth == len(events)
