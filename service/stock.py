"""Parts stock at the four levels the maker keeps it: central warehouses, distribution
depots, outlets and technicians' vans; transfers between them, receipts from suppliers,
and stock counts, each kept in the ledger (`stock_moves`).

A location is written `level:id`: `central:CN`, `distribution:east`, `outlet:o-1`,
`van:tech-1` (a van is its technician's). Stock never goes below zero, however many
people move it at once: a transfer takes from its source with one conditional
`UPDATE … SET qty = qty - n WHERE qty >= n` in the transaction that adds to its
destination and writes the ledger, so of two transfers racing for the last unit one
wins and the other is refused with what there is (the tests race them on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import (
    depot_stock,
    depots,
    outlet_stock,
    outlets,
    parts,
    purchase_orders,
    stock_moves,
    technicians,
    van_stock,
)
from db.upsert import insert_for
from service.errors import ServiceError


class Level(StrEnum):
    CENTRAL = "central"
    DISTRIBUTION = "distribution"
    OUTLET = "outlet"
    VAN = "van"


class StockRefused(ServiceError):
    """A move that cannot be made as asked: the message says what to change."""


class NotEnoughStock(StockRefused):
    def __init__(self, location: Location, sku: str, wanted: int, held: int) -> None:
        self.location, self.sku, self.wanted, self.held = location, sku, wanted, held
        super().__init__(f"{location} holds {held} of {sku}, not the {wanted} asked for")


@dataclass(frozen=True, slots=True)
class Location:
    level: Level
    id: str

    def __str__(self) -> str:
        return f"{self.level.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Location:
        level, _, ident = text.partition(":")
        try:
            return cls(Level(level), ident) if ident else cls._bad(text)
        except ValueError:
            return cls._bad(text)

    @staticmethod
    def _bad(text: str) -> Location:
        raise StockRefused(
            f"location {text!r}: write it level:id, the level one of "
            f"{', '.join(x.value for x in Level)} (e.g. outlet:o-1, van:tech-1)"
        )


@dataclass(frozen=True, slots=True)
class Held:
    location: Location
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    id: int
    sku: str
    qty: int
    received: int
    destination: str
    expected_on: date
    reference: str | None
    state: str  # open | received | cancelled
    ordered_at: datetime
    actor: str

    @property
    def due(self) -> int:
        """Still to come."""
        return self.qty - self.received if self.state == "open" else 0


@dataclass(frozen=True, slots=True)
class Move:
    id: int
    at: datetime
    kind: str  # transfer | receipt | count
    sku: str
    qty: int
    from_location: str | None
    to_location: str | None
    actor: str
    note: str | None


def _table(level: Level) -> tuple[sa.Table, str]:
    """The table holding a level's stock, and its location column."""
    if level is Level.OUTLET:
        return outlet_stock, "outlet_id"
    if level is Level.VAN:
        return van_stock, "technician_id"
    return depot_stock, "depot_id"


class Stock:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ---------------------------------------------------------------------------
    def held(self, location: Location | None = None, sku: str | None = None) -> list[Held]:
        """What each location holds (of `sku`), every level, by location then SKU."""
        out: list[Held] = []
        with self.db.engine.connect() as conn:
            levels = {d.id: Level(d.level) for d in conn.execute(sa.select(depots))}
            tables = (
                (depot_stock, "depot_id"),
                (outlet_stock, "outlet_id"),
                (van_stock, "technician_id"),
            )
            for table, key in tables:
                q = sa.select(table.c[key], table.c.sku, table.c.qty)
                if sku is not None:
                    q = q.where(table.c.sku == sku)
                for where, s, qty in conn.execute(q):
                    level = (
                        levels[where]
                        if table is depot_stock
                        else (Level.OUTLET if table is outlet_stock else Level.VAN)
                    )
                    at = Location(level, where)
                    if location is None or location == at:
                        out.append(Held(at, s, qty))
        order = list(Level)
        return sorted(out, key=lambda h: (order.index(h.location.level), h.location.id, h.sku))

    def moves(
        self, *, sku: str | None = None, location: Location | None = None, limit: int = 200
    ) -> list[Move]:
        """The ledger, newest first."""
        m = stock_moves
        q = sa.select(m).order_by(m.c.id.desc()).limit(limit)
        if sku is not None:
            q = q.where(m.c.sku == sku)
        if location is not None:
            q = q.where(
                sa.or_(m.c.from_location == str(location), m.c.to_location == str(location))
            )
        with self.db.engine.connect() as conn:
            return [Move(**r._mapping) for r in conn.execute(q)]

    # -- moving ----------------------------------------------------------------------------
    def transfer(
        self,
        sku: str,
        qty: int,
        source: Location,
        destination: Location,
        *,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Move:
        """Move `qty` of `sku` from one location to another, all or nothing."""
        if qty <= 0:
            raise StockRefused(f"quantity {qty}: move one or more")
        if source == destination:
            raise StockRefused(f"{source} to itself: name another destination")
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            self._known(conn, sku, source, destination)
            self._take(conn, sku, qty, source)
            self._add(conn, sku, qty, destination)
            return self._log(conn, "transfer", sku, qty, source, destination, actor, note, now)

    def order(
        self,
        sku: str,
        qty: int,
        destination: Location,
        expected_on: date,
        *,
        actor: str,
        reference: str | None = None,
        now: datetime | None = None,
    ) -> PurchaseOrder:
        """Record a purchase from a supplier: the stock plan counts it as arriving on
        `expected_on` until it is received."""
        if qty <= 0:
            raise StockRefused(f"quantity {qty}: order one or more")
        now = now or datetime.now(UTC)
        row = {
            "sku": sku, "qty": qty, "received": 0, "destination": str(destination),
            "expected_on": expected_on, "reference": reference, "state": "open",
            "ordered_at": now, "actor": actor,
        }  # fmt: skip
        with self.db.engine.begin() as conn:
            self._known(conn, sku, destination)
            ident = conn.execute(
                purchase_orders.insert().values(**row).returning(purchase_orders.c.id)
            ).scalar_one()
        return PurchaseOrder(id=int(ident), **row)  # type: ignore[arg-type]

    def purchase_orders(self, *, open_only: bool = True) -> list[PurchaseOrder]:
        q = sa.select(purchase_orders).order_by(purchase_orders.c.expected_on, purchase_orders.c.id)
        if open_only:
            q = q.where(purchase_orders.c.state == "open")
        with self.db.engine.connect() as conn:
            return [PurchaseOrder(**r._mapping) for r in conn.execute(q)]

    def receive(
        self,
        sku: str,
        qty: int,
        destination: Location,
        *,
        actor: str,
        note: str | None = None,
        order_id: int | None = None,
        now: datetime | None = None,
    ) -> Move:
        """Stock arriving from a supplier or the factory; with `order_id`, against that
        purchase order (received in full, it is closed)."""
        if qty <= 0:
            raise StockRefused(f"quantity {qty}: receive one or more")
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            self._known(conn, sku, destination)
            if order_id is not None:
                self._against(conn, order_id, sku, qty, destination)
                note = note or f"purchase order #{order_id}"
            self._add(conn, sku, qty, destination)
            return self._log(conn, "receipt", sku, qty, None, destination, actor, note, now)

    @staticmethod
    def _against(conn: Connection, order_id: int, sku: str, qty: int, at: Location) -> None:
        po = purchase_orders
        row = conn.execute(sa.select(po).where(po.c.id == order_id).with_for_update()).first()
        if row is None:
            raise NotFound("purchase order", str(order_id))
        if row.state != "open" or row.sku != sku or row.destination != str(at):
            raise StockRefused(
                f"purchase order #{order_id} is for {row.qty} {row.sku} to {row.destination} "
                f"({row.state}): receive it there, as that part"
            )
        received = row.received + qty
        conn.execute(
            po.update()
            .where(po.c.id == order_id)
            .values(received=received, state="received" if received >= row.qty else "open")
        )

    def count(
        self,
        sku: str,
        counted: int,
        location: Location,
        *,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Move:
        """A physical count: the location holds `counted` from now; the ledger keeps the
        difference it made (negative: stock was missing)."""
        if counted < 0:
            raise StockRefused(f"counted {counted}: a count is zero or more")
        now = now or datetime.now(UTC)
        table, key = _table(location.level)
        with self.db.engine.begin() as conn:
            self._known(conn, sku, location)
            before = conn.execute(
                sa.select(table.c.qty)
                .where(table.c[key] == location.id, table.c.sku == sku)
                .with_for_update()
            ).scalar_one_or_none()
            stmt = insert_for(conn, table).values({key: location.id, "sku": sku, "qty": counted})
            conn.execute(
                stmt.on_conflict_do_update(index_elements=[key, "sku"], set_={"qty": counted})
            )
            diff = counted - (before or 0)
            return self._log(conn, "count", sku, diff, None, location, actor, note, now)

    # -- the parts of a move -----------------------------------------------------------------
    @staticmethod
    def _take(conn: Connection, sku: str, qty: int, source: Location) -> None:
        table, key = _table(source.level)
        where = (table.c[key] == source.id, table.c.sku == sku)
        done = conn.execute(
            table.update().where(*where, table.c.qty >= qty).values(qty=table.c.qty - qty)
        ).rowcount
        if done != 1:
            held = conn.execute(sa.select(table.c.qty).where(*where)).scalar_one_or_none()
            raise NotEnoughStock(source, sku, qty, held or 0)

    @staticmethod
    def _add(conn: Connection, sku: str, qty: int, destination: Location) -> None:
        table, key = _table(destination.level)
        stmt = insert_for(conn, table).values({key: destination.id, "sku": sku, "qty": qty})
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[key, "sku"], set_={"qty": table.c.qty + stmt.excluded.qty}
            )
        )

    @staticmethod
    def _log(
        conn: Connection,
        kind: str,
        sku: str,
        qty: int,
        source: Location | None,
        destination: Location,
        actor: str,
        note: str | None,
        now: datetime,
    ) -> Move:
        row = {
            "at": now,
            "kind": kind,
            "sku": sku,
            "qty": qty,
            "from_location": str(source) if source else None,
            "to_location": str(destination),
            "actor": actor,
            "note": note,
        }
        ident = conn.execute(stock_moves.insert().values(**row).returning(stock_moves.c.id))
        return Move(id=int(ident.scalar_one()), **row)  # type: ignore[arg-type]

    @staticmethod
    def _known(conn: Connection, sku: str, *locations: Location) -> None:
        if conn.execute(sa.select(parts.c.sku).where(parts.c.sku == sku)).first() is None:
            raise NotFound("part", sku)
        for at in locations:
            if at.level is Level.OUTLET:
                found = conn.execute(sa.select(outlets.c.id).where(outlets.c.id == at.id)).first()
            elif at.level is Level.VAN:
                found = conn.execute(
                    sa.select(technicians.c.id).where(technicians.c.id == at.id)
                ).first()
            else:
                level = conn.execute(
                    sa.select(depots.c.level).where(depots.c.id == at.id)
                ).scalar_one_or_none()
                if level is not None and level != at.level.value:
                    raise StockRefused(f"{at}: depot {at.id} is a {level} depot ({level}:{at.id})")
                found = level
            if found is None:
                raise NotFound("stock location", str(at))
