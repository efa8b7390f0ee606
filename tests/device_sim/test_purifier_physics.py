"""Air-purifier physics: the sanity the simulator's ground truth rests on."""

from __future__ import annotations

import numpy as np

from device_sim.environment import DAY_S, OutdoorAir
from device_sim.fleet import Fleet, FleetSpec
from device_sim.purifier import RATED_HOURS, Purifiers
from device_sim.truth import Exhaustion, GroundTruth

T0 = 1_767_225_600.0  # 2026-01-01, simulated


def run_year(n: int = 400, seed: int = 3, days: float = 365) -> tuple[Purifiers, OutdoorAir]:
    rng = np.random.default_rng(seed)
    p = Purifiers.create(n, rng, smoker_share=0.3)
    env = OutdoorAir.create(rng.integers(0, 3, n), rng)
    t, dt = T0, 600.0
    while t < T0 + days * DAY_S:
        env.step(dt)
        p.step(t, dt, env.pm25(t))
        t += dt
    return p, env


def test_filter_loading_only_grows_and_airflow_falls_as_it_does() -> None:
    rng = np.random.default_rng(0)
    p = Purifiers.create(50, rng)
    env = OutdoorAir.create(rng.integers(0, 3, 50), rng)
    loads, cadr, current = [], [], []
    p.level[:] = 3
    for i in range(2000):
        env.step(3600)
        p.step(T0 + i * 3600, 3600, env.pm25(T0 + i * 3600))
        loads.append(p.loaded_g.copy())
    assert np.all(np.diff(np.array(loads), axis=0) >= 0)
    for frac in (0.0, 0.5, 1.0):
        p.loaded_g = p.capacity_g * frac
        p.level[:] = 3
        cadr.append(p.cadr_m3h().mean())
        current.append(p.motor_current_ma().mean())
    assert cadr[0] > cadr[1] > cadr[2]  # CADR falls as the filter loads
    assert current[0] < current[1] < current[2]  # motor works harder at fixed rpm


def test_a_clean_room_decays_to_the_outdoor_equilibrium() -> None:
    rng = np.random.default_rng(1)
    p = Purifiers.create(5, rng, smoker_share=0)
    p.cooking_mg[:] = 0
    p.pm25[:] = 300.0
    outdoor = np.full(5, 20.0)
    for i in range(48):
        p.step(T0 + 3 * 3600 + i * 600, 600, outdoor)  # 03:00, nobody cooks
    # sleep mode, level 1: equilibrium = ach·P·C_out / (ach + deposition + CADR/V)
    from device_sim.purifier import DEPOSITION_PER_H, PENETRATION

    k = p.ach + DEPOSITION_PER_H + p.cadr_m3h() / p.room_m3
    np.testing.assert_allclose(p.pm25, p.ach * PENETRATION * 20.0 / k, rtol=0.05)


def test_captured_mass_is_what_the_airflow_carried_through() -> None:
    rng = np.random.default_rng(2)
    p = Purifiers.create(3, rng, smoker_share=0)
    p.cooking_mg[:] = 0
    p.pm25[:] = 50.0
    before = p.loaded_g.copy()
    outdoor = np.full(3, 50.0)
    p.step(T0 + 3 * 3600, 60.0, outdoor)  # one minute: concentration barely moves
    expected_g = p.cadr_m3h() * 50.0 * (60 / 3600) * 1e-6
    np.testing.assert_allclose(p.loaded_g - before, expected_g, rtol=0.05)


def test_smoky_homes_exhaust_filters_long_before_the_rated_hours() -> None:
    p, _ = run_year()
    hours = (p.exhausted_at - T0) / 3600
    smokers, others = hours[p.smoker], hours[~p.smoker]
    assert np.nanmedian(smokers) < 0.6 * np.nanmedian(others)
    assert np.nanmedian(smokers) < 0.6 * RATED_HOURS
    # the device's own estimate cannot tell: same run time, same "life left"
    assert np.ptp(p.filter_life_pct()) == 0


def test_replacing_a_filter_resets_it_and_the_fleet_records_truth() -> None:
    fleet = Fleet.create(
        FleetSpec(devices=20, seed=4, start=T0, smoker_share=1.0, mix={"purifier": 1.0})
    )
    fleet.advance(T0 + 120 * DAY_S)
    full = [d for d, t in fleet.truth.devices.items() if t.exhaustions]
    assert full, "120 smoky days exhaust some filters"
    fleet.replace_filters(full[:1])
    purifiers = fleet.groups["purifier"].model
    assert isinstance(purifiers, Purifiers)
    i = fleet.groups["purifier"].ids.index(full[0])
    assert purifiers.loaded_g[i] == 0 and purifiers.used_hours[i] == 0
    assert fleet.truth.devices[full[0]].replacements == [Exhaustion("main", fleet.t)]


def test_the_same_seed_gives_the_same_fleet_and_another_seed_does_not() -> None:
    def readings(seed: int) -> list[object]:
        fleet = Fleet.create(FleetSpec(devices=30, seed=seed, start=T0))
        fleet.advance(T0 + 10 * DAY_S)
        return [m for _, _, _, m, _, _ in fleet.readings()]

    assert readings(7) == readings(7)
    assert readings(7) != readings(8)


def test_ground_truth_round_trips_through_its_file(tmp_path: object) -> None:
    from pathlib import Path

    # hourly physics: the file, not the physics, is under test, and 200 days at the
    # default step take most of a minute
    spec = FleetSpec(devices=10, seed=5, start=T0, smoker_share=1.0, physics_dt=3600)
    fleet = Fleet.create(spec)
    fleet.replace_filters([fleet.ids[-1]], stage="ro")
    fleet.advance(T0 + 200 * DAY_S)
    fleet.truth.published = 123
    path = Path(str(tmp_path)) / "truth.jsonl"
    fleet.truth.save(path)
    assert GroundTruth.load(path) == fleet.truth


def test_a_fleet_installed_over_time_starts_part_way_through_filter_life() -> None:
    fleet = Fleet.create(FleetSpec(devices=300, seed=9, start=T0, initial_wear=0.9))
    wear = [d.capacity["initial_wear"] for d in fleet.truth.devices.values()]
    assert min(wear) >= 0 and max(wear) < 0.9 and np.std(wear) > 0.1
    purifiers = fleet.groups["purifier"].model
    assert isinstance(purifiers, Purifiers)
    np.testing.assert_allclose(
        purifiers.load_fraction,
        [fleet.truth.devices[d].capacity["initial_wear"] for d in fleet.groups["purifier"].ids],
        atol=1e-4,  # the ground truth keeps 4 decimals
    )
    fleet.advance(T0 + 30 * DAY_S)  # the most worn run out within the month
    assert any(d.exhaustions for d in fleet.truth.devices.values())
