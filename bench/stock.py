"""The stock plan backtested on a simulated year with an 11.11 peak, against stocking from
last year's usage.

The network: a central warehouse (four weeks from the supplier), two distribution depots
(a week from it), three outlets under each (a week from their depot), two technicians'
vans at each outlet. Air conditioners: each outlet starts with an installed base; units
sell every week, more in summer and most in the two weeks of 11.11, and this year sells
30 % more than last, with a higher peak. Parts: an installation kit per new unit (in its
week), return-air filters (each installed unit about every 26 weeks) and indoor fan
motors (failures: 0.05 % of the units a week, three times that in a unit's first 13
weeks). A week's demand at each van is Poisson around its expectation.

Both policies plan with the engine's own `service.stock_plan.replenish` every week, over
the next ten weeks, from what each location holds, counting what is on its way in the
week it arrives, and ship what it says to ship this week (a transfer as far as its source
holds; purchases always arrive, after the supplier's lead time). They differ only in the
forecast they plan from:

* **the plan**: the installed base times the failure and replacement rates measured on
  last year's data, plus the sales plan (this year's expected sales, each week's figure
  off by a random ±15 %) times the installation kit and the early-life failures;
* **last year's usage**: what each van used in the same week last year.

A demand a van cannot meet from its stock is met from its outlet's shelf if it can
(the technician fetches it); otherwise it is unmet. Reported per part: the fill rate
over the year and in the peak weeks (44-48), and the stock held (units at every level,
averaged over the weeks).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.stock import Level, Location
from service.stock_plan import DEPTH, Node, PlanPolicy, replenish

WEEKS = 52
HORIZON = 10
PEAK = range(44, 49)  # weeks 44-48: 11.11 falls in week 45
SKUS = ("AC-INSTALL-KIT", "AC-FILTER-01", "AC-FANMOTOR-01")
FILTER_WEEKS = 26.0
FAILURE_PER_UNIT_WEEK = 0.0005
EARLY_FACTOR = 3.0
EARLY_WEEKS = 13


@dataclass(frozen=True)
class World:
    nodes: tuple[Node, ...]
    vans: dict[str, str]  # van → its outlet
    regions: dict[str, str]  # outlet → its depot (the region it sells in)
    base: dict[str, float]  # outlet → installed units at the start of last year
    weekly_sales: dict[str, float]  # depot's region → baseline units a week last year


def network() -> World:
    central = Location(Level.CENTRAL, "cn")
    nodes = [Node(central, None, 4, purchases=True)]
    vans: dict[str, str] = {}
    regions: dict[str, str] = {}
    base: dict[str, float] = {}
    for d in ("east", "south"):
        depot = Location(Level.DISTRIBUTION, d)
        nodes.append(Node(depot, central, 1))
        for o in range(3):
            outlet = Location(Level.OUTLET, f"{d}-{o}")
            nodes.append(Node(outlet, depot, 1))
            regions[str(outlet)] = d
            base[str(outlet)] = 1500.0 + 500 * o
            for v in range(2):
                van = Location(Level.VAN, f"{d}-{o}-{v}")
                nodes.append(Node(van, outlet, 0))
                vans[str(van)] = str(outlet)
    return World(tuple(nodes), vans, regions, base, {"east": 60.0, "south": 40.0})


def season(week: int, peak: float) -> float:
    """Sales that week over the baseline: summer twice, the 11.11 fortnight `peak` ×."""
    if week in (44, 45):
        return peak
    return 2.0 if 24 <= week <= 31 else 1.0


@dataclass
class Year:
    """Expected parts per van and week (the truth the demand is drawn around) and the
    sales each outlet sold by week."""

    expected: dict[tuple[str, str], np.ndarray]  # (van, sku) → per week
    sales: dict[str, np.ndarray]  # outlet → units sold per week
    base_end: dict[str, float]  # outlet → installed units at the year's end


def year(world: World, base: dict[str, float], growth: float, peak: float) -> Year:
    expected: dict[tuple[str, str], np.ndarray] = {}
    sales: dict[str, np.ndarray] = {}
    base_end: dict[str, float] = {}
    for outlet, region in world.regions.items():
        share = 1 / 3  # a region's sales split evenly among its three outlets
        sold = np.array(
            [world.weekly_sales[region] * growth * season(w, peak) * share for w in range(WEEKS)]
        )
        sales[outlet] = sold
        installed = base[outlet] + np.concatenate([[0.0], np.cumsum(sold)[:-1]])
        young = np.array([sold[max(0, w - EARLY_WEEKS) : w].sum() for w in range(WEEKS)])
        kit = sold
        filt = installed / FILTER_WEEKS
        motor = FAILURE_PER_UNIT_WEEK * (installed + (EARLY_FACTOR - 1) * young)
        carriers = [v for v, o in world.vans.items() if o == outlet]
        for van in carriers:
            for sku, series in zip(SKUS, (kit, filt, motor), strict=True):
                expected[(van, sku)] = series / len(carriers)
        base_end[outlet] = base[outlet] + sold.sum()
    return Year(expected, sales, base_end)


@dataclass
class Outcome:
    demand: dict[str, float]
    filled: dict[str, float]
    peak_demand: dict[str, float]
    peak_filled: dict[str, float]
    held: dict[str, float]  # units at every level, summed over the weeks


def simulate(
    world: World,
    truth: Year,
    forecast: dict[tuple[str, str], np.ndarray],
    start: dict[tuple[str, str], float],
    rng: np.random.Generator,
) -> Outcome:
    """A year of weeks: plan, ship what is due, receive, meet demand."""
    lead = {str(n.location): n.lead_weeks for n in world.nodes}
    parent = {str(n.location): (str(n.parent) if n.parent else None) for n in world.nodes}
    on_hand: dict[tuple[str, str], float] = defaultdict(float, start)
    transit: list[tuple[int, str, str, float]] = []  # (arrives, location, sku, qty)
    out = Outcome(
        defaultdict(float), defaultdict(float), defaultdict(float), defaultdict(float),
        defaultdict(float),
    )  # fmt: skip
    draws = {k: rng.poisson(v) for k, v in truth.expected.items()}  # the same demand for both
    for t in range(WEEKS):
        for arrival in [x for x in transit if x[0] == t]:
            on_hand[(arrival[1], arrival[2])] += arrival[3]
        transit = [x for x in transit if x[0] > t]
        arriving: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * HORIZON)
        for when, where, sku, qty in transit:
            arriving[(where, sku)][min(when - t, HORIZON - 1)] += qty
        ahead = {k: _window(v, t) for k, v in forecast.items()}
        plan = replenish(world.nodes, on_hand, ahead, HORIZON, PlanPolicy(), arriving)
        # the lowest level first: a van's need comes before a depot's
        for p in sorted(plan.proposals, key=lambda p: DEPTH[Location.parse(p.destination).level]):
            if p.release_week != 0:
                continue
            qty = float(p.qty)
            if p.source is not None:
                qty = min(qty, on_hand[(p.source, p.sku)])
                on_hand[(p.source, p.sku)] -= qty
            if qty > 0:
                transit.append((t + lead[p.destination], p.destination, p.sku, qty))
        for arrival in [x for x in transit if x[0] == t]:  # a van's own week: same day
            on_hand[(arrival[1], arrival[2])] += arrival[3]
        transit = [x for x in transit if x[0] > t]
        for (van, sku), series in draws.items():
            want = float(series[t])
            got = min(want, on_hand[(van, sku)])
            on_hand[(van, sku)] -= got
            shelf = parent[van]
            assert shelf is not None
            extra = min(want - got, on_hand[(shelf, sku)])
            on_hand[(shelf, sku)] -= extra
            out.demand[sku] += want
            out.filled[sku] += got + extra
            if t in PEAK:
                out.peak_demand[sku] += want
                out.peak_filled[sku] += got + extra
        for (_, sku), qty in on_hand.items():
            out.held[sku] += qty
    return out


def _window(series: np.ndarray, t: int) -> list[float]:
    part = list(series[t : t + HORIZON])
    return part + [part[-1] if part else 0.0] * (HORIZON - len(part))


def run_case(seed: int) -> dict[str, Outcome]:
    rng = np.random.default_rng(seed)
    world = network()
    last = year(world, world.base, 1.0, peak=4.0)
    this = year(world, last.base_end, 1.3, peak=6.0)
    history = {k: rng.poisson(v).astype(float) for k, v in last.expected.items()}
    # rates measured on last year's data: failures and filters per installed unit-week
    plan_forecast: dict[tuple[str, str], np.ndarray] = {}
    for (van, sku), series in this.expected.items():
        if sku == "AC-INSTALL-KIT":  # the sales plan, each week off by up to ±15 %
            noise = rng.normal(1.0, 0.15, WEEKS).clip(0.5, 1.5)
            plan_forecast[(van, sku)] = series * noise
        else:
            plan_forecast[(van, sku)] = series * _measured(history, last, world, van, sku)
    last_year = dict(history)
    start = _opening(world, history)
    return {
        "the plan": simulate(world, this, plan_forecast, start, np.random.default_rng(seed + 1)),
        "last year's usage": simulate(
            world, this, last_year, start, np.random.default_rng(seed + 1)
        ),
    }


def _measured(
    history: dict[tuple[str, str], np.ndarray], last: Year, world: World, van: str, sku: str
) -> float:
    """Last year's observed count over its expectation for the van's outlet, pooled over
    the outlet's vans: the error a rate measured on a year of real data carries."""
    outlet = world.vans[van]
    mine = [v for v, o in world.vans.items() if o == outlet]
    seen = sum(history[(v, sku)].sum() for v in mine)
    expected = sum(last.expected[(v, sku)].sum() for v in mine)
    return float(seen / expected) if expected else 1.0


def _opening(
    world: World, history: dict[tuple[str, str], np.ndarray]
) -> dict[tuple[str, str], float]:
    """Both policies start from the same shelves: two weeks of last year's average use of
    everything below each location (a van's own); nothing at the central warehouse."""
    parent = {str(n.location): (str(n.parent) if n.parent else None) for n in world.nodes}
    start: dict[tuple[str, str], float] = defaultdict(float)
    for (van, sku), series in history.items():
        where: str | None = van
        while where is not None and not where.startswith("central:"):
            start[(where, sku)] += 2.0 * float(series.mean())
            where = parent[where]
    return dict(start)


def report(results: list[dict[str, Outcome]], command: str, seconds: float) -> str:
    lines = [
        "## Stock plan backtest: a simulated year with an 11.11 peak",
        "",
        f"`{command}` ({len(results)} simulated year(s), {seconds:.0f} s). Fill rate: the",
        "share of the parts technicians needed that their van or outlet had; stock held:",
        "units at every level, averaged over the weeks, and as weeks of the year's average",
        "demand.",
        "",
        "| part | policy | fill rate, year | fill rate, peak weeks 44-48 | stock held (units) "
        "| weeks of demand held |",
        "|---|---|---|---|---|---|",
    ]
    for sku in SKUS:
        for policy in ("the plan", "last year's usage"):
            outs = [r[policy] for r in results]
            fill = sum(o.filled[sku] for o in outs) / max(sum(o.demand[sku] for o in outs), 1e-9)
            peak = sum(o.peak_filled[sku] for o in outs) / max(
                sum(o.peak_demand[sku] for o in outs), 1e-9
            )
            held = sum(o.held[sku] for o in outs) / len(outs) / WEEKS
            weekly = sum(o.demand[sku] for o in outs) / len(outs) / WEEKS
            cover = held / weekly if weekly else 0.0
            lines.append(
                f"| {sku} | {policy} | {100 * fill:.1f} % | {100 * peak:.1f} % | {held:,.0f} "
                f"| {cover:.1f} |"
            )
    return "\n".join(lines) + "\n"


def run_stock_bench(*, seeds: int, output: Path | None, command: str) -> str:
    began = time.perf_counter()
    results = [run_case(seed) for seed in range(1, seeds + 1)]
    text = report(results, command, time.perf_counter() - began)
    if output is not None:
        with output.open("a") as f:
            f.write("\n" + text)
    return text
