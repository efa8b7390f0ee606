"""Parts demand forecast: what each outlet will need, by SKU and week, for the next weeks.

Two sources add up:
* **open orders**: every live order needs the parts its problem lists
  (`service.catalog`), in the week of its visit (booked, else due, else now);
* **predicted filter exhaustions** (`Predictions`, filled by the models or any other
  source): a device whose filter stage is predicted spent needs that stage's filter in
  that week, weighted by the prediction's probability. A prediction already covered by
  a live order, or made before that filter was replaced, does not count twice.

Expected demand is compared with what the outlet holds (its shelf plus its
technicians' vans): `shortfall` is how much the demand up to that week exceeds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from db.database import Database
from db.tables import (
    device_sites,
    devices,
    filter_predictions,
    filter_replacements,
    outlet_stock,
    technicians,
    territories,
    van_stock,
    work_orders,
)
from service.catalog import filter_problem, in_force, parts_for
from service.csvout import dataclass_csv
from service.lifecycle import LIVE


@dataclass(frozen=True, slots=True)
class DemandRow:
    outlet_id: str
    territory_id: str | None  # when forecast by territory
    sku: str
    week: date  # Monday
    from_orders: int
    from_predictions: float
    expected: float
    on_hand: int  # the outlet's shelf plus its technicians' vans
    shortfall: float | None  # demand up to this week beyond on_hand (per outlet only)


def week_of(moment: datetime, now: datetime) -> date:
    day = max(moment, now).astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def forecast(
    db: Database,
    *,
    weeks: int = 8,
    by_territory: bool = False,
    now: datetime | None = None,
) -> list[DemandRow]:
    now = now or datetime.now(UTC)
    horizon = week_of(now, now) + timedelta(weeks=weeks)
    horizon_at = datetime.combine(horizon, datetime.min.time(), tzinfo=UTC)
    wo, fp = work_orders, filter_predictions
    profiles = in_force(db)
    orders_demand: dict[tuple[str, str | None, str, date], int] = defaultdict(int)
    pred_demand: dict[tuple[str, str | None, str, date], float] = defaultdict(float)
    with db.engine.connect() as conn:
        live = conn.execute(
            sa.select(
                wo.c.device_id,
                wo.c.device_type,
                wo.c.problem_kind,
                wo.c.outlet_id,
                wo.c.territory_id,
                sa.func.coalesce(wo.c.scheduled_start, wo.c.due_at, wo.c.created_at).label("when"),
            ).where(wo.c.state.in_([s.value for s in LIVE]), wo.c.outlet_id.is_not(None))
        ).all()
        covered = {(o.device_id, o.problem_kind) for o in live}
        for o in live:
            week = week_of(_utc(o.when), now)
            if week < horizon:
                for sku in parts_for(profiles, o.device_type, o.problem_kind):
                    orders_demand[(o.outlet_id, o.territory_id, sku, week)] += 1
        replaced = sa.exists().where(
            filter_replacements.c.device_id == fp.c.device_id,
            filter_replacements.c.stage == fp.c.stage,
            filter_replacements.c.at >= fp.c.updated_at,
        )
        predicted = conn.execute(
            sa.select(
                fp.c.device_id,
                fp.c.stage,
                fp.c.exhausted_at,
                fp.c.probability,
                devices.c.device_type,
                device_sites.c.territory_id,
                territories.c.outlet_id,
            )
            .join(devices, devices.c.id == fp.c.device_id)
            .join(device_sites, device_sites.c.device_id == fp.c.device_id)
            .join(territories, territories.c.id == device_sites.c.territory_id)
            .where(fp.c.exhausted_at < horizon_at, ~replaced)
        ).all()
        for p in predicted:
            problem = filter_problem(profiles, p.device_type, p.stage)
            if (p.device_id, problem) in covered:
                continue  # the live order already counts it
            week = week_of(p.exhausted_at, now)
            for sku in parts_for(profiles, p.device_type, problem):
                pred_demand[(p.outlet_id, p.territory_id, sku, week)] += p.probability
        on_hand = _on_hand(conn)

    keys: set[tuple[str, str | None, str, date]] = set()
    for k in [*orders_demand, *pred_demand]:
        keys.add(k if by_territory else (k[0], None, k[2], k[3]))
    merged_o: dict[tuple[str, str | None, str, date], int] = defaultdict(int)
    merged_p: dict[tuple[str, str | None, str, date], float] = defaultdict(float)
    for k, n in orders_demand.items():
        merged_o[k if by_territory else (k[0], None, k[2], k[3])] += n
    for k, x in pred_demand.items():
        merged_p[k if by_territory else (k[0], None, k[2], k[3])] += x
    rows: list[DemandRow] = []
    running: dict[tuple[str, str], float] = defaultdict(float)
    for k in sorted(keys, key=lambda k: (k[0], k[1] or "", k[2], k[3])):
        outlet, territory, sku, week = k
        expected = merged_o[k] + merged_p[k]
        running[(outlet, sku)] += expected
        stock = on_hand.get((outlet, sku), 0)
        rows.append(
            DemandRow(
                outlet_id=outlet,
                territory_id=territory,
                sku=sku,
                week=week,
                from_orders=merged_o[k],
                from_predictions=round(merged_p[k], 2),
                expected=round(expected, 2),
                on_hand=stock,
                shortfall=None
                if by_territory
                else round(max(0.0, running[(outlet, sku)] - stock), 2),
            )
        )
    return rows


def _on_hand(conn: sa.Connection) -> dict[tuple[str, str], int]:
    held: dict[tuple[str, str], int] = defaultdict(int)
    for outlet, sku, qty in conn.execute(sa.select(outlet_stock)):
        held[(outlet, sku)] += qty
    vans = conn.execute(
        sa.select(technicians.c.outlet_id, van_stock.c.sku, van_stock.c.qty).join(
            technicians, technicians.c.id == van_stock.c.technician_id
        )
    )
    for outlet, sku, qty in vans:
        held[(outlet, sku)] += qty
    return held


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def forecast_csv(rows: Iterable[DemandRow]) -> str:
    return dataclass_csv(DemandRow, rows)
