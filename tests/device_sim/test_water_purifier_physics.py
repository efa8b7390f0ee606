"""Water-purifier physics: stages wear by what flows through them."""

from __future__ import annotations

import numpy as np

from device_sim.environment import DAY_S
from device_sim.water_purifier import RATED_DAYS, WaterPurifiers

T0 = 1_767_225_600.0


def run(days: float, region: np.ndarray, seed: int = 1) -> WaterPurifiers:
    w = WaterPurifiers.create(region, np.random.default_rng(seed))
    t = T0
    while t < T0 + days * DAY_S:
        w.step(t, 900.0)
        t += 900.0
    return w


def test_tds_out_rises_and_flow_falls_as_the_stages_wear() -> None:
    w = WaterPurifiers.create(np.zeros(20, dtype=int), np.random.default_rng(2))
    tds_out, flow = [], []
    t = T0
    for _ in range(200):
        for _ in range(96):  # a day in 15-minute steps
            w.step(t, 900.0)
            t += 900.0
        tds_out.append(w.tds_in * (1 - w.rejection()))
        flow.append(w.flow_lpm())
    assert np.all(np.diff(np.array(tds_out), axis=0) >= 0)
    assert np.all(np.diff(np.array(flow), axis=0) <= 0)
    assert np.all(tds_out[-1] > tds_out[0]) and np.all(flow[-1] < flow[0])


def test_a_household_draws_a_plausible_volume_and_the_stages_see_all_of_it() -> None:
    w = run(60, np.full(200, 1))
    per_day = w.volume_total_l / 60
    assert 3 < np.median(per_day) < 20  # litres a day for drinking and cooking
    np.testing.assert_allclose(w.volume_stage_l[2], w.volume_total_l)
    np.testing.assert_allclose(w.carbon_l, w.volume_total_l)


def test_hard_water_spends_ro_membranes_sooner_while_the_device_cannot_tell() -> None:
    north, south = np.zeros(150, dtype=int), np.full(150, 2)
    w_north, w_south = run(400, north, seed=3), run(400, south, seed=3)
    spent_north = np.mean(~np.isnan(w_north.exhausted_at["ro"]))
    spent_south = np.mean(~np.isnan(w_south.exhausted_at["ro"]))
    assert spent_north > spent_south + 0.3
    # what the devices show depends on litres and months, not on the feed water
    life_n, life_s = w_north.reported_life_pct("ro"), w_south.reported_life_pct("ro")
    assert abs(np.median(life_n) - np.median(life_s)) < 10


def test_carbon_is_spent_by_age_even_in_a_light_household() -> None:
    w = run(RATED_DAYS["carbon"] + 5, np.full(30, 2))
    assert np.all(~np.isnan(w.exhausted_at["carbon"]))


def test_replacing_a_stage_resets_only_that_stage() -> None:
    w = run(120, np.zeros(10, dtype=int))
    mask = np.zeros(10, dtype=bool)
    mask[0] = True
    ro_before = w.ro_dose.copy()
    w.replace_stage("sediment", mask)
    assert w.sediment_load[0] == 0 and w.volume_stage_l[0][0] == 0
    assert w.flow_lpm()[0] == w.flow_lpm().max()
    np.testing.assert_array_equal(w.ro_dose, ro_before)
