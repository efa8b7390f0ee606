"""Stock planned ahead of a sales peak, at every level: what each location will need by
SKU and week, and the transfers and purchases that put it there in time.

**Demand** at the outlets (the customer-facing level), by SKU and week, from four sources:

* live jobs and predicted filter exhaustions (`service.parts_forecast`);
* the installed base's failures: each model's failure rate per unit-week over the last
  year of technicians' verdicts (`service.quality`), times the parts fitted per failure;
* the **sales plan** (units by region × model × week): each new unit's installation
  parts (its model's `installation_parts` in the product profile) in its week, and its
  early-life failures (the rate of units in their first 13 weeks) in the weeks after;
  a region's units go to its outlets in proportion to the installed base of that kind.

An outlet's demand is carried by its technicians' vans, split evenly among them (an
outlet without technicians keeps it on its shelf).

**Replenishment** is distribution requirements planning, bottom-up: each location keeps
at least a safety stock (z × √(demand over its lead time and review week), z = 1.65 for
about 95 % of weeks without a shortfall under Poisson demand) at the end of every week;
where its projected stock would fall below, an order arrives that week, released its
lead time earlier: a transfer from its parent (van ← outlet ← distribution ← central) or,
at a central depot, a purchase from the supplier. A location's orders are its parent's
demand in their release week. An order that should have been released before this week
is marked late: the shortfall before it arrives can only be met by a lateral transfer or
an expedited shipment.

`replenish` is a pure function of the network, what each location holds and the demand:
the engine's plan and the backtest (`fleetcare bench stock`) run the same code.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from db.database import Database
from db.tables import (
    depots,
    device_sites,
    devices,
    outlets,
    regions,
    sales_plan,
    technicians,
    territories,
)
from db.upsert import upsert
from service.errors import ServiceError
from service.parts_forecast import forecast as jobs_forecast
from service.quality import Unit, failures, parts_fitted, units
from service.stock import Level, Location, Stock
from telemetry.profile import ProfileSet

WEEK = timedelta(days=7)
DEFAULT_SUPPLY_DAYS = 3  # an outlet's supply from its depot, when the registry has none


def monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def lead_weeks(days: int) -> int:
    """A lead time in whole weeks, rounded up: 3 days is a week, 10 days two."""
    return math.ceil(max(days, 0) / 7)


# -- the sales plan --------------------------------------------------------------------------
class SalesPlanRefused(ServiceError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} bad row(s); nothing was saved:\n  {shown}{more}")


class SalesPlanRow(BaseModel):
    """Units the maker expects to sell in a region, of a model, in a week."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    region_id: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    week: date = Field(description="Any day of the week; kept as its Monday")
    units: int = Field(ge=0, le=10_000_000)

    @field_validator("week")
    @classmethod
    def _monday(cls, v: date) -> date:
        return monday(v)


class SalesPlan:
    def __init__(self, db: Database, profiles: ProfileSet) -> None:
        self.db, self.profiles = db, profiles

    def save(self, rows: Sequence[SalesPlanRow], *, now: datetime | None = None) -> int:
        """Insert or replace the given weeks, all or nothing: a region that does not
        exist or a model no product profile lists refuses the whole plan, every bad row
        named (line numbers from 1)."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            known = set(conn.execute(sa.select(regions.c.id)).scalars())
            problems = []
            for i, r in enumerate(rows, 1):
                if r.region_id not in known:
                    problems.append(f"row {i}: no region {r.region_id!r} in the registry")
                if self.profiles.for_model(r.model) is None:
                    problems.append(
                        f"row {i}: no product profile lists the model {r.model!r} "
                        "(`fleetcare profiles list` shows the models)"
                    )
            if problems:
                raise SalesPlanRefused(problems)
            upsert(
                conn,
                sales_plan,
                [{**r.model_dump(), "updated_at": now} for r in rows],
                keys=["region_id", "model", "week"],
                update=["units", "updated_at"],
            )
        return len(rows)

    def rows(self, start: date | None = None, end: date | None = None) -> list[SalesPlanRow]:
        q = sa.select(
            sales_plan.c.region_id, sales_plan.c.model, sales_plan.c.week, sales_plan.c.units
        )
        if start is not None:
            q = q.where(sales_plan.c.week >= monday(start))
        if end is not None:
            q = q.where(sales_plan.c.week < end)
        with self.db.engine.connect() as conn:
            found = conn.execute(
                q.order_by(sales_plan.c.week, sales_plan.c.region_id, sales_plan.c.model)
            )
            return [SalesPlanRow(region_id=r[0], model=r[1], week=r[2], units=r[3]) for r in found]


def parse_sales_plan_csv(text: str) -> list[SalesPlanRow]:
    """`region_id,model,week,units` rows (week: YYYY-MM-DD, any day of it); every bad row
    named by its line (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    wanted = {"region_id", "model", "week", "units"}
    out, problems = [], []
    try:
        if reader.fieldnames is None or not wanted <= set(reader.fieldnames):
            raise SalesPlanRefused(
                [f"the header must name {', '.join(sorted(wanted))}; it has {reader.fieldnames}"]
            )
        for line, raw in enumerate(reader, 2):
            try:
                out.append(SalesPlanRow.model_validate({k: raw[k] for k in wanted}))
            except ValidationError as exc:
                for e in exc.errors():
                    problems.append(f"line {line}, {'.'.join(map(str, e['loc']))}: {e['msg']}")
    except csv.Error as exc:
        raise SalesPlanRefused([f"line {reader.line_num}: not CSV ({exc})"]) from None
    if problems:
        raise SalesPlanRefused(problems)
    return out


# -- the network -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Node:
    """A location in the plan, where its stock comes from and how many weeks it takes.
    A central depot (parent None, `purchases`) buys from the supplier; a location with
    neither a parent nor purchases cannot be replenished (the plan says so)."""

    location: Location
    parent: Location | None
    lead_weeks: int
    purchases: bool = False

    @property
    def supplied(self) -> bool:
        return self.parent is not None or self.purchases


DEPTH = {Level.VAN: 0, Level.OUTLET: 1, Level.DISTRIBUTION: 2, Level.CENTRAL: 3}


# -- replenishment (pure) --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlanPolicy:
    weeks: int = 12
    z: float = 1.65  # safety stock: z × √(demand over lead + review), Poisson
    review_weeks: int = 1
    early_life_weeks: int = 13
    history: timedelta = timedelta(days=365)  # failure rates from this much history
    van_share: bool = True  # vans carry their outlet's demand


@dataclass(frozen=True, slots=True)
class Proposal:
    kind: str  # transfer | purchase
    sku: str
    qty: int
    source: str | None  # None: the supplier
    destination: str
    release_week: int  # weeks from this one (0: now)
    arrival_week: int
    late: bool  # needed before it can arrive: expedite, or move stock laterally


@dataclass(frozen=True, slots=True)
class WeekPlan:
    demand: float  # own (outlets and vans) plus the orders of the locations it supplies
    receipts: int
    end: float  # projected stock at the week's end (negative: short)
    safety: float


@dataclass
class Replenishment:
    proposals: list[Proposal] = field(default_factory=list)
    weeks: dict[tuple[str, str], list[WeekPlan]] = field(default_factory=dict)  # (loc, sku)


def replenish(
    nodes: Sequence[Node],
    held: Mapping[tuple[str, str], float],
    demand: Mapping[tuple[str, str], Sequence[float]],
    weeks: int,
    policy: PlanPolicy = PlanPolicy(),
    arriving: Mapping[tuple[str, str], Sequence[float]] | None = None,
) -> Replenishment:
    """Plan every location's orders for `weeks` weeks, lowest level first. `held`,
    `demand` and `arriving` (stock already on its way: open purchase orders, by the week
    they are due) are keyed by (location, SKU); weeks count from 0, this one."""
    arriving = arriving or {}
    out = Replenishment()
    need: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * weeks)
    for (loc, sku), series in demand.items():
        for w, x in enumerate(series[:weeks]):
            need[(loc, sku)][w] += x
    skus = sorted({sku for _, sku in need} | {sku for _, sku in held} | {s for _, s in arriving})
    for node in sorted(nodes, key=lambda n: (DEPTH[n.location.level], str(n.location))):
        here = str(node.location)
        for sku in skus:
            d = need.get((here, sku))
            stock = float(held.get((here, sku), 0))
            coming = list(arriving.get((here, sku), ()))[:weeks]
            if d is None and not stock and not any(coming):
                continue
            d = d or [0.0] * weeks
            coming += [0.0] * (weeks - len(coming))
            plan, orders = _plan_one(node, d, stock, coming, weeks, policy)
            out.weeks[(here, sku)] = plan
            for release, arrival, qty, late in orders:
                out.proposals.append(
                    Proposal(
                        kind="transfer" if node.parent is not None else "purchase",
                        sku=sku,
                        qty=qty,
                        source=str(node.parent) if node.parent is not None else None,
                        destination=here,
                        release_week=release,
                        arrival_week=arrival,
                        late=late,
                    )
                )
                if node.parent is not None:  # the parent's demand, in the release week
                    need[(str(node.parent), sku)][release] += qty
    out.proposals.sort(key=lambda p: (p.release_week, not p.late, p.destination, p.sku))
    return out


def _plan_one(
    node: Node,
    d: Sequence[float],
    stock: float,
    coming: Sequence[float],
    weeks: int,
    policy: PlanPolicy,
) -> tuple[list[WeekPlan], list[tuple[int, int, int, bool]]]:
    lead, cover = node.lead_weeks, node.lead_weeks + policy.review_weeks
    plan: list[WeekPlan] = []
    orders: list[tuple[int, int, int, bool]] = []
    short_before = False  # a shortfall no order could arrive in time for
    for w in range(weeks):
        ahead = sum(d[w : w + cover]) + (max(0, w + cover - weeks) * d[-1] if d else 0.0)
        safety = policy.z * math.sqrt(ahead) if ahead > 0 else 0.0
        stock += coming[w]
        receipt = 0
        if node.supplied and w >= lead:
            gap = d[w] + safety - stock
            if gap > 1e-9:
                receipt = math.ceil(gap - 1e-9)
                orders.append((w - lead, w, receipt, short_before and w == lead))
        stock = stock + receipt - d[w]
        if stock < -1e-9 and (w < lead or not node.supplied):
            short_before = True
        got = receipt + round(coming[w])
        plan.append(WeekPlan(round(d[w], 3), got, round(stock, 3), round(safety, 3)))
    return plan, orders


# -- the engine's plan ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DemandRow:
    location: str
    level: str
    sku: str
    week: date
    from_jobs: float  # live jobs and predicted filter exhaustions
    from_installed_base: float  # the installed units' failures
    from_sales: float  # new units: installation parts and early-life failures
    from_supplied: float  # the orders of the locations it supplies
    total: float
    on_hand_end: float  # projected at the week's end (negative: short)
    safety: float


@dataclass(frozen=True, slots=True)
class PlannedMove:
    kind: str
    sku: str
    qty: int
    source: str | None
    destination: str
    release: date  # ship (or order from the supplier) in this week
    arrival: date
    late: bool


@dataclass
class StockPlan:
    start: date  # this week's Monday
    weeks: int
    demand: list[DemandRow]
    moves: list[PlannedMove]
    unsupplied: list[str]  # locations with demand and no source set

    def csv(self) -> str:
        from service.csvout import dataclass_csv

        return dataclass_csv(DemandRow, self.demand)


@dataclass(frozen=True, slots=True)
class _Rates:
    per_unit_week: dict[str, float]  # by model (or device type), failures per unit-week
    early_per_unit_week: dict[str, float]  # the same in a unit's first weeks
    parts_per_failure: dict[str, dict[str, float]]  # by model: SKU → parts per failure


def failure_rates(db: Database, now: datetime, policy: PlanPolicy) -> tuple[_Rates, list[Unit]]:
    """Failures per unit-week by model over the history window (all of a unit's weeks,
    and its first `early_life_weeks`), and the parts fitted per failure."""
    fleet = units(db)
    start = (now - policy.history).date()
    end = now.date()
    by_device = {u.device_id: u for u in fleet}
    exposure: dict[str, float] = defaultdict(float)
    early_exposure: dict[str, float] = defaultdict(float)
    early_days = 7 * policy.early_life_weeks
    for u in fleet:
        key = u.model or u.device_type
        first = max(u.in_service_on, start)
        exposure[key] += max((end - first).days, 0) / 7
        e0, e1 = max(u.in_service_on, start), min(u.in_service_on + timedelta(days=early_days), end)
        early_exposure[key] += max((e1 - e0).days, 0) / 7
    count: dict[str, int] = defaultdict(int)
    early: dict[str, int] = defaultdict(int)
    orders: dict[str, list[int]] = defaultdict(list)
    for f in failures(db):
        unit = by_device.get(f.device_id)
        if unit is None or not (start <= f.at.date() < end):
            continue
        key = unit.model or unit.device_type
        count[key] += 1
        if (f.at.date() - unit.in_service_on).days < early_days:
            early[key] += 1
        if f.order_id is not None:
            orders[key].append(f.order_id)
    fitted = parts_fitted(db, [o for os in orders.values() for o in os])
    per_failure: dict[str, dict[str, float]] = {}
    for key, ids in orders.items():
        total: dict[str, float] = defaultdict(float)
        for o in ids:
            for sku, qty in fitted.get(o, {}).items():
                total[sku] += qty
        per_failure[key] = {sku: q / count[key] for sku, q in total.items()}
    rate = {k: count[k] / exposure[k] for k in count if exposure[k] > 0}
    early_rate = {
        k: early[k] / early_exposure[k] if early_exposure[k] > 0 and early[k] else rate[k]
        for k in rate
    }
    return _Rates(rate, early_rate, per_failure), fleet


@dataclass
class _Network:
    nodes: list[Node]
    vans: dict[str, list[str]]  # outlet → its active technicians
    level: dict[str, Level]  # location → its level

    def carriers(self, outlet: str, van_share: bool) -> list[str]:
        """Where an outlet's demand is met: its technicians' vans, else its shelf."""
        vans = self.vans.get(outlet, []) if van_share else []
        return [str(Location(Level.VAN, t)) for t in vans] or [str(Location(Level.OUTLET, outlet))]


class StockPlanner:
    def __init__(
        self, db: Database, profiles: ProfileSet, policy: PlanPolicy | None = None
    ) -> None:
        self.db, self.profiles = db, profiles
        self.policy = policy or PlanPolicy()

    def plan(self, *, weeks: int | None = None, now: datetime | None = None) -> StockPlan:
        now = now or datetime.now(UTC)
        weeks = weeks or self.policy.weeks
        start = monday(now.date())
        network = self._network()
        outlet_of_unit, region_of_outlet = self._places()
        parts: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

        def add(outlet: str, sku: str, w: int, source: int, x: float) -> None:
            if 0 <= w < weeks and x:
                parts[(outlet, sku, w)][source] += x

        # live jobs and predicted exhaustions
        for job in jobs_forecast(self.db, weeks=weeks, now=now):
            add(job.outlet_id, job.sku, (job.week - start).days // 7, 0, job.expected)
        # the installed base's failures, from next week (this week's are live jobs)
        rates, fleet = failure_rates(self.db, now, self.policy)
        base: dict[tuple[str, str], int] = defaultdict(int)  # (outlet, model) → units
        kind_base: dict[tuple[str, str], int] = defaultdict(int)  # (outlet, device type)
        for u in fleet:
            outlet = outlet_of_unit.get(u.device_id)
            if outlet is None:
                continue
            base[(outlet, u.model or u.device_type)] += 1
            kind_base[(outlet, u.device_type)] += 1
        for (outlet, key), n in base.items():
            r = rates.per_unit_week.get(key, 0.0)
            for sku, per in rates.parts_per_failure.get(key, {}).items():
                for w in range(1, weeks):
                    add(outlet, sku, w, 1, n * r * per)
        # the sales plan: installation parts, then early-life failures
        outlets_in: dict[str, list[str]] = defaultdict(list)
        for outlet, region in region_of_outlet.items():
            if region is not None:
                outlets_in[region].append(outlet)
        for sale in SalesPlan(self.db, self.profiles).rows(start, start + weeks * WEEK):
            profile = self.profiles.for_model(sale.model)
            if profile is None or not outlets_in.get(sale.region_id):
                continue
            spec = next(m for m in profile.doc.models if m.code == sale.model)
            here = sorted(outlets_in[sale.region_id])
            weights = [kind_base.get((o, profile.name), 0) for o in here]
            if not sum(weights):
                weights = [1] * len(here)
            w0 = (sale.week - start).days // 7
            early = rates.early_per_unit_week.get(
                sale.model, rates.early_per_unit_week.get(profile.name, 0.0)
            )
            per_failure = rates.parts_per_failure.get(sale.model) or rates.parts_per_failure.get(
                profile.name, {}
            )
            for outlet, weight in zip(here, weights, strict=True):
                share = sale.units * weight / sum(weights)
                for sku in spec.installation_parts:
                    add(outlet, sku, w0, 2, share)
                for sku, per in per_failure.items():
                    for w in range(w0 + 1, w0 + 1 + self.policy.early_life_weeks):
                        add(outlet, sku, w, 2, share * early * per)

        # outlets' demand to their vans
        demand: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * weeks)
        for (outlet, sku, w), xs in parts.items():
            targets = network.carriers(outlet, self.policy.van_share)
            for t in targets:
                demand[(t, sku)][w] += sum(xs) / len(targets)
        stock = Stock(self.db)
        held = {(str(h.location), h.sku): float(h.qty) for h in stock.held()}
        arriving: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * weeks)
        for po in stock.purchase_orders():
            w = max(0, (monday(po.expected_on) - start).days // 7)  # overdue: any day now
            if w < weeks:
                arriving[(po.destination, po.sku)][w] += po.due
        done = replenish(network.nodes, held, demand, weeks, self.policy, arriving)
        return self._assemble(start, weeks, network, parts, demand, done)

    # -- reading the network -----------------------------------------------------------------
    def _network(self) -> _Network:
        nodes: list[Node] = []
        vans: dict[str, list[str]] = defaultdict(list)
        with self.db.engine.connect() as conn:
            found = conn.execute(sa.select(depots)).all()
            depot_level = {d.id: Level(d.level) for d in found}
            for d in found:
                parent = Location(depot_level[d.parent_id], d.parent_id) if d.parent_id else None
                at = Location(Level(d.level), d.id)
                nodes.append(Node(at, parent, lead_weeks(d.lead_days), d.level == "central"))
            for o in conn.execute(
                sa.select(outlets.c.id, outlets.c.depot_id, outlets.c.supply_days)
            ):
                parent = Location(depot_level[o.depot_id], o.depot_id) if o.depot_id else None
                days = o.supply_days if o.supply_days is not None else DEFAULT_SUPPLY_DAYS
                nodes.append(Node(Location(Level.OUTLET, o.id), parent, lead_weeks(days)))
            for t in conn.execute(
                sa.select(technicians.c.id, technicians.c.outlet_id).where(technicians.c.active)
            ):
                nodes.append(
                    Node(Location(Level.VAN, t.id), Location(Level.OUTLET, t.outlet_id), 0)
                )
                vans[t.outlet_id].append(t.id)
        return _Network(nodes, dict(vans), {str(n.location): n.location.level for n in nodes})

    def _places(self) -> tuple[dict[str, str], dict[str, str | None]]:
        with self.db.engine.connect() as conn:
            unit_outlet = dict(
                conn.execute(
                    sa.select(device_sites.c.device_id, territories.c.outlet_id)
                    .join(territories, territories.c.id == device_sites.c.territory_id)
                    .join(devices, devices.c.id == device_sites.c.device_id)
                ).all()
            )
            region = dict(conn.execute(sa.select(outlets.c.id, outlets.c.region_id)).all())
        return unit_outlet, region

    def _assemble(
        self,
        start: date,
        weeks: int,
        network: _Network,
        parts: Mapping[tuple[str, str, int], list[float]],
        demand: Mapping[tuple[str, str], list[float]],
        done: Replenishment,
    ) -> StockPlan:
        own: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for (outlet, sku, w), xs in parts.items():
            targets = network.carriers(outlet, self.policy.van_share)
            for t in targets:
                for i in range(3):
                    own[(t, sku, w)][i] += xs[i] / len(targets)
        rows: list[DemandRow] = []
        for (loc, sku), plan in sorted(done.weeks.items()):
            level = network.level.get(loc, Level.OUTLET)
            for w, wp in enumerate(plan):
                mine = own.get((loc, sku, w), [0.0, 0.0, 0.0])
                rows.append(
                    DemandRow(
                        location=loc,
                        level=level.value,
                        sku=sku,
                        week=start + w * WEEK,
                        from_jobs=round(mine[0], 3),
                        from_installed_base=round(mine[1], 3),
                        from_sales=round(mine[2], 3),
                        from_supplied=round(max(0.0, wp.demand - sum(mine)), 3),
                        total=wp.demand,
                        on_hand_end=wp.end,
                        safety=wp.safety,
                    )
                )
        rows.sort(key=lambda r: (DEPTH[Level(r.level)], r.location, r.sku, r.week))
        moves = [
            PlannedMove(
                p.kind, p.sku, p.qty, p.source, p.destination,
                start + p.release_week * WEEK, start + p.arrival_week * WEEK, p.late,
            )
            for p in done.proposals
        ]  # fmt: skip
        unsupplied = sorted(
            str(n.location)
            for n in network.nodes
            if not n.supplied and any(k[0] == str(n.location) for k in demand)
        )
        return StockPlan(start, weeks, rows, moves, unsupplied)


def moves_csv(moves: Iterable[PlannedMove]) -> str:
    from service.csvout import dataclass_csv

    return dataclass_csv(PlannedMove, moves)
