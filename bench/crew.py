"""The soak's field service: what ops, technicians, customers and the parts warehouse do
with the jobs the engine opens, so a long run is shaped like production, where faults
get repaired, not like a fleet whose every fault stays firing to the end.

Each pass, on the wall clock:
* ops approve the proposed jobs (the console's one click);
* each job the dispatcher assigned is accepted, scheduled, started and completed by its
  technician: the required parts, the serial from the registry, and, for a fault job,
  what the unit really had (the simulator's ground truth stands in for the diagnosis on
  site), so the completion sends the device `repair` or `filter_replaced`;
* the customer rates it, which closes and settles it;
* the warehouse tops every outlet back up to its opening stock, as a distribution centre
  replenishes its stations.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from db.database import Database
from db.errors import DomainError
from db.tables import outlet_stock, work_orders
from service.callbacks import Callbacks
from service.catalog import in_force
from service.completion import Completion, visit_report
from service.dispatch import Dispatcher
from service.lifecycle import State
from service.orders import WorkOrder, WorkOrders

log = logging.getLogger("bench.crew")


@dataclass
class CrewTally:
    approved: int = 0
    completed: int = 0
    repairs: int = 0  # completions that told the device a fault was fixed
    refused: int = 0  # moves the engine refused (the reason is logged)
    restocked: int = 0  # parts put back on outlet shelves


class FieldCrew:
    def __init__(
        self,
        db: Database,
        *,
        serials: Mapping[str, str],
        fault_of: Callable[[str], str | None],
        opening_stock: Mapping[tuple[str, str], int],
        photo_dir: Path,
    ) -> None:
        self.db, self.serials, self.fault_of = db, serials, fault_of
        self.opening = opening_stock
        self.orders = WorkOrders(db)
        self.dispatcher = Dispatcher(db)
        self.profiles = in_force(db)
        self.completion = Completion(self.orders, photo_dir)
        self.callbacks = Callbacks(self.orders)
        self.tally = CrewTally()

    def _in(self, state: State) -> list[WorkOrder]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(work_orders)
                .where(work_orders.c.state == state.value)
                .order_by(work_orders.c.id)
            )
            return [WorkOrder.from_row(r) for r in rows]

    def work(self) -> CrewTally:
        """One pass over every job waiting on people; returns the running tally."""
        for o in self._in(State.PROPOSED):
            self._try(self._approve, o)
        for o in self._in(State.ASSIGNED):
            self._try(self._visit, o)
        self._restock()
        return self.tally

    def _try(self, move: Callable[[WorkOrder], None], order: WorkOrder) -> None:
        try:
            move(order)
        except DomainError as exc:  # raced by the engine, or refused: counted, logged
            self.tally.refused += 1
            log.warning("crew move refused", extra={"kv": {"order": order.id, "why": str(exc)}})

    def _approve(self, o: WorkOrder) -> None:
        self.orders.transition(
            o.id,
            State.OPEN,
            actor="ops:soak",
            reason="telemetry confirms it",
            expect=State.PROPOSED,
        )
        self.tally.approved += 1

    def _visit(self, o: WorkOrder) -> None:
        tech = o.technician_id or ""
        self.dispatcher.accept(o.id, tech)
        for to in (State.SCHEDULED, State.IN_PROGRESS):
            self.orders.transition(o.id, to, actor=tech)
        found = (
            None if o.problem_kind.startswith("filter_replacement") else self.fault_of(o.device_id)
        )
        report = visit_report(o, tech, self.serials[o.device_id], found, profiles=self.profiles)
        self.completion.complete(o.id, report)
        self.tally.completed += 1
        self.tally.repairs += report.confirmed_fault is not None
        self.callbacks.rate(o.id, 5, "soak")

    def _restock(self) -> None:
        with self.db.engine.begin() as conn:
            have = {
                (o, s): q
                for o, s, q in conn.execute(
                    sa.select(outlet_stock.c.outlet_id, outlet_stock.c.sku, outlet_stock.c.qty)
                )
            }
            for (outlet, sku), qty in self.opening.items():
                short = qty - have.get((outlet, sku), qty)
                if short > 0:  # relative: a completion may take one meanwhile
                    conn.execute(
                        outlet_stock.update()
                        .where(outlet_stock.c.outlet_id == outlet, outlet_stock.c.sku == sku)
                        .values(qty=outlet_stock.c.qty + short)
                    )
                    self.tally.restocked += short

    def run(self, stop: threading.Event, every_s: float) -> None:
        """Passes every `every_s` until `stop`; a failed pass is logged and retried."""
        while not stop.wait(every_s):
            try:
                self.work()
            except sa.exc.SQLAlchemyError:
                log.exception("crew pass failed")
