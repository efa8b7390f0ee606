"""API accounts: who may call the API, in which role, over what.

Roles and their scope:
* `customer`: their own devices and jobs (`customer_id`);
* `technician`: their own assignments (`technician_id`);
* `ops`: every device and job, or only those in `territories` when some are given;
* `admin`: everything, and accounts.

A key is 32 random bytes, shown once when it is issued. Only its SHA-256 is stored: a
key is long and random, so a fast hash is safe here (a password would need a slow one),
and the lookup is one indexed read. A password (for the console's login) is short and
chosen by a person, so it is stored with scrypt and a salt of its own. Errors:
`AccountError` for anything refused, with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from db.database import Database
from db.tables import api_keys, api_users, customers, technicians, territories

KEY_PREFIX = "fc_"
MIN_PASSWORD = 10
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# checked against when there is no password to check, so that costs the same
_DECOY = "scrypt$" + "00" * 16 + "$" + "00" * 64


class Role(StrEnum):
    CUSTOMER = "customer"
    TECHNICIAN = "technician"
    OPS = "ops"
    ADMIN = "admin"


class AccountError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account behind a valid key."""

    user_id: str
    name: str
    role: Role
    customer_id: str | None = None
    technician_id: str | None = None
    territories: tuple[str, ...] = ()  # ops: only these; empty = all
    sessions_after: datetime | None = None  # tokens signed before are refused


@dataclass(frozen=True, slots=True)
class IssuedKey:
    principal: Principal
    key: str  # the only time it is seen


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        user_id: str,
        *,
        name: str,
        role: Role,
        customer_id: str | None = None,
        technician_id: str | None = None,
        territories_: Sequence[str] = (),
        now: datetime | None = None,
    ) -> IssuedKey:
        """A new account with its first key."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            if conn.execute(sa.select(api_users.c.id).where(api_users.c.id == user_id)).first():
                raise AccountError(f"an account {user_id!r} exists already: pick another id")
            if role is Role.CUSTOMER:
                _exists(conn, customers, customer_id, "customer", "--customer")
            if role is Role.TECHNICIAN:
                _exists(conn, technicians, technician_id, "technician", "--technician")
            for t in territories_:
                _exists(conn, territories, t, "territory", "--territory")
            if territories_ and role is not Role.OPS:
                raise AccountError("only an ops account is limited to territories")
            conn.execute(
                api_users.insert().values(
                    id=user_id,
                    name=name,
                    role=role.value,
                    customer_id=customer_id if role is Role.CUSTOMER else None,
                    technician_id=technician_id if role is Role.TECHNICIAN else None,
                    territories=list(territories_),
                    created_at=now,
                )
            )
        return self.issue(user_id, now=now)

    def issue(self, user_id: str, *, now: datetime | None = None) -> IssuedKey:
        """Another key for an account (rotation: issue, switch, then revoke the old)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.engine.begin() as conn:
            row = conn.execute(sa.select(api_users).where(api_users.c.id == user_id)).first()
            if row is None:
                raise AccountError(f"no account {user_id!r}")
            conn.execute(
                api_keys.insert().values(
                    user_id=user_id,
                    prefix=key[: len(KEY_PREFIX) + 6],
                    sha256=_digest(key),
                    created_at=now or datetime.now(UTC),
                )
            )
        return IssuedKey(_principal(row), key)

    def revoke(self, prefix: str, *, now: datetime | None = None) -> int:
        """Revoke the keys starting with `prefix` (as listed); returns how many."""
        with self.db.engine.begin() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now or datetime.now(UTC))
            )
        return int(done.rowcount or 0)

    def set_password(self, user_id: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
        with self.db.engine.begin() as conn:
            done = conn.execute(
                api_users.update()
                .where(api_users.c.id == user_id)
                # a new password ends every sign-in made with the old one
                .values(password_hash=_hash_password(password), sessions_after=_now())
            )
        if not done.rowcount:
            raise AccountError(f"no account {user_id!r}")

    def login(self, user_id: str, password: str) -> Principal | None:
        """The account, when the password is its own and it is not disabled. As slow for
        an account without a password, or none at all, as for a wrong password: the time
        tells nothing about which ids exist."""
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_users).where(
                    api_users.c.id == user_id, api_users.c.disabled_at.is_(None)
                )
            ).first()
        if row is None or not row.password_hash:
            _check_password(password, _DECOY)
            return None
        return _principal(row) if _check_password(password, row.password_hash) else None

    def end_sessions(self, user_id: str) -> None:
        """Refuse every token signed for the account until now (sign-out everywhere)."""
        with self.db.engine.begin() as conn:
            conn.execute(
                api_users.update().where(api_users.c.id == user_id).values(sessions_after=_now())
            )

    def disable(self, user_id: str, *, disabled: bool = True) -> None:
        """Disable an account (its keys and tokens stop at once) or enable it again (its
        keys work again; sign-ins from before the disabling stay ended)."""
        values: dict[str, Any] = {"disabled_at": _now() if disabled else None}
        if disabled:
            values["sessions_after"] = values["disabled_at"]
        with self.db.engine.begin() as conn:
            done = conn.execute(
                api_users.update().where(api_users.c.id == user_id).values(**values)
            )
        if not done.rowcount:
            raise AccountError(f"no account {user_id!r}")

    def principal(self, user_id: str) -> Principal | None:
        """A live account by id (what a signed token names)."""
        return self.db.read(lambda conn: principal_by_id(conn, user_id))

    def authenticate(self, key: str) -> Principal | None:
        """The account behind a live key, or None."""
        return self.db.read(lambda conn: principal_by_key(conn, key))


def principal_by_key(conn: sa.Connection, key: str) -> Principal | None:
    """The live account behind a live key, or None (one indexed read)."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = conn.execute(_BY_KEY, {"sha256": _digest(key)}).first()
    return _principal(row) if row is not None else None


def principal_by_id(conn: sa.Connection, user_id: str) -> Principal | None:
    """A live account by id (what a signed token names), or None."""
    row = conn.execute(_BY_ID, {"id": user_id}).first()
    return _principal(row) if row is not None else None


async def aprincipal_by_key(db: Database, key: str) -> Principal | None:
    """`principal_by_key` for the API: the read every request's credential needs when it
    is not remembered, on `Database.aone` (a prepared statement on PostgreSQL)."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = await db.aone(_BY_KEY, {"sha256": _digest(key)})
    return _principal(row) if row is not None else None


async def aprincipal_by_id(db: Database, user_id: str) -> Principal | None:
    """`principal_by_id` for the API, on `Database.aone`."""
    row = await db.aone(_BY_ID, {"id": user_id})
    return _principal(row) if row is not None else None


# the columns a Principal needs, no more (the password hash stays in the database)
_PRINCIPAL = (
    api_users.c.id,
    api_users.c.name,
    api_users.c.role,
    api_users.c.customer_id,
    api_users.c.technician_id,
    api_users.c.territories,
    api_users.c.sessions_after,
)
_BY_KEY = (
    sa.select(*_PRINCIPAL)
    .join(api_keys, api_keys.c.user_id == api_users.c.id)
    .where(
        api_keys.c.sha256 == sa.bindparam("sha256"),
        api_keys.c.revoked_at.is_(None),
        api_users.c.disabled_at.is_(None),
    )
)


_BY_ID = sa.select(*_PRINCIPAL).where(
    api_users.c.id == sa.bindparam("id"), api_users.c.disabled_at.is_(None)
)


def _exists(conn: sa.Connection, table: sa.Table, key: str | None, what: str, flag: str) -> None:
    if not key:
        raise AccountError(f"a {what} account needs its {what} id ({flag})")
    if conn.execute(sa.select(table.c.id).where(table.c.id == key)).first() is None:
        raise AccountError(f"no {what} {key!r} in the registry")


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    scheme, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    mine = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(mine.hex(), digest)


def _principal(row: Any) -> Principal:
    """From a SQLAlchemy row or a psycopg named tuple (`Database.aone` on PostgreSQL)."""
    return Principal(
        user_id=str(row.id),
        name=str(row.name),
        role=Role(row.role),
        customer_id=row.customer_id,
        technician_id=row.technician_id,
        territories=tuple(row.territories or ()),
        sessions_after=_utc(row.sessions_after),
    )


def _utc(moment: datetime | None) -> datetime | None:
    """psycopg's direct reads give naive UTC for our UTC columns on some paths."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
