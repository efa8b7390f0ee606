"""Air-conditioner physics: the room follows the setpoint; a dirty filter costs capacity."""

from __future__ import annotations

import numpy as np

from device_sim.air_conditioner import F_MAX, AirConditioners, r32_pressure_kpa
from device_sim.environment import DAY_S

JULY = 1_767_225_600.0 + 190 * DAY_S
JANUARY = 1_767_225_600.0 + 10 * DAY_S


def run(start: float, days: float, n: int = 200, seed: int = 1) -> AirConditioners:
    rng = np.random.default_rng(seed)
    ac = AirConditioners.create(rng.integers(0, 3, n), rng)
    t = start
    while t < start + days * DAY_S:
        ac.step(t, 300.0)
        t += 300.0
    return ac


def test_r32_pressure_matches_its_table_within_a_few_percent() -> None:
    table = {-10.0: 582.0, 0.0: 813.0, 20.0: 1474.0, 40.0: 2478.0, 50.0: 3140.0}
    for temp, kpa in table.items():
        assert abs(r32_pressure_kpa(np.array(temp)) / kpa - 1) < 0.04


def test_in_summer_cooling_holds_the_room_near_its_setpoint() -> None:
    ac = run(JULY, 3)
    cooling = ac.mode == 1
    assert cooling.mean() > 0.3
    assert abs(np.median(ac.room_c[cooling] - ac.cool_setpoint[cooling])) < 1.0


def test_in_winter_it_heats_and_pressures_and_air_temperatures_follow_the_mode() -> None:
    ac = run(JANUARY, 2)
    m = ac.metrics()
    heating = (ac.mode == 2) & (ac.freq > 0)
    assert heating.any()
    assert np.all(m["supply_air_temp_c"][heating] > m["room_temp_c"][heating])
    assert np.all(m["discharge_pressure_kpa"][heating] > m["suction_pressure_kpa"][heating])


def test_a_dirty_filter_cuts_capacity_at_the_same_compressor_speed() -> None:
    ac = run(JULY, 1, n=20)
    ac.mode[:] = 1
    ac.freq[:] = 60.0
    clean = ac.capacity_kw().copy()
    ac.filter_load[:] = 1.0
    dirty = ac.capacity_kw()
    assert np.all(dirty < 0.6 * clean)
    assert np.all(ac.power_w() > 0)


def test_power_rises_with_compressor_frequency() -> None:
    ac = run(JULY, 1, n=10)
    ac.mode[:] = 1
    ac.freq[:] = 20.0
    low = ac.power_w().copy()
    ac.freq[:] = F_MAX
    assert np.all(ac.power_w() > 3 * low)


def test_filters_load_with_fan_hours_clog_at_capacity_and_cleaning_resets_them() -> None:
    ac = run(JULY, 20, n=50)
    np.testing.assert_allclose(ac.filter_load, ac.dust_rate * ac.filter_hours, rtol=1e-9)
    assert np.all(np.isnan(ac.clogged_at))
    ac.filter_load[:5] = 0.9999
    ac.mode[:5] = 1
    t = JULY + 20 * DAY_S + 19 * 3600.0  # a hot July evening at home: running
    for _ in range(12):
        ac.step(t, 300.0)
        t += 300.0
    assert np.all(~np.isnan(ac.clogged_at[:5]))
    clogged = ~np.isnan(ac.clogged_at)
    ac.clean_filter(clogged)
    assert np.all(ac.filter_load[clogged] == 0) and np.all(ac.filter_hours[clogged] == 0)
