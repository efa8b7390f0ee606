"""Each device's own MQTT credentials, and the broker's auth files made from them.

A device logs in with its id as user name and a random password, shown once when it is
provisioned (or rotated). We keep only the hash, in the form Mosquitto's password file
takes (`$7$`: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt, as `mosquitto_passwd`
writes it), so the file is written from the database and no plain password is ever
stored. The ACL lets a device publish only under its own topics and read only its own
commands; the engine's account reads every device's messages and writes commands.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import device_credentials, devices

ITERATIONS = 101  # mosquitto_passwd's default in Mosquitto 2.0
_USER_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """The `$7$…` hash Mosquitto 2 checks a password against."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_mosquitto_hash(password: str, stored: str) -> bool:
    _, seven, iterations, salt, digest = stored.split("$")
    if seven != "7":
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return secrets.compare_digest(base64.b64encode(got).decode(), digest)


@dataclass(frozen=True)
class Issued:
    device_id: str
    password: str  # shown once


@dataclass(frozen=True)
class EngineAccount:
    """The account FleetCare's own processes log in with (`mqtt.username`/`password`)."""

    username: str
    password: str


class CredentialError(ValueError):
    """A device that cannot get credentials, with the reason."""


class DeviceCredentials:
    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))

    def provision(self, device_id: str, password: str | None = None) -> Issued:
        """New credentials for a registered device (again after a revocation): a random
        password, or the one given (set in the factory, imported from its records)."""
        if not set(device_id) <= _USER_OK:
            raise CredentialError(
                f"{device_id!r}: a broker user name takes letters, digits, '-', '_' and '.'"
            )
        if password is not None and (len(password) < 16 or ":" in password):
            raise CredentialError(
                f"{device_id}: an imported password needs at least 16 characters and no ':'"
            )
        password = password or secrets.token_urlsafe(24)
        now = self.clock()
        with self.db.engine.begin() as conn:
            if (
                conn.execute(sa.select(devices.c.id).where(devices.c.id == device_id)).first()
                is None
            ):
                raise NotFound("device", device_id)
            live = conn.execute(
                sa.select(device_credentials.c.revoked_at).where(
                    device_credentials.c.device_id == device_id
                )
            ).first()
            if live is not None and live.revoked_at is None:
                raise CredentialError(
                    f"{device_id} already has credentials: rotate them, or revoke first"
                )
            conn.execute(
                device_credentials.delete().where(device_credentials.c.device_id == device_id)
            )
            conn.execute(
                device_credentials.insert().values(
                    device_id=device_id, password_hash=mosquitto_hash(password), created_at=now
                )
            )
        return Issued(device_id, password)

    def rotate(self, device_id: str) -> Issued:
        """A new password; the old one stops working once the broker reloads its files."""
        password = secrets.token_urlsafe(24)
        if not self._change_live(
            device_id, password_hash=mosquitto_hash(password), rotated_at=self.clock()
        ):
            raise CredentialError(f"{device_id} has no live credentials: provision it first")
        return Issued(device_id, password)

    def revoke(self, device_id: str) -> None:
        if not self._change_live(device_id, revoked_at=self.clock()):
            raise CredentialError(f"{device_id} has no live credentials")

    def _change_live(self, device_id: str, **values: object) -> bool:
        dc = device_credentials.c
        with self.db.engine.begin() as conn:
            changed = conn.execute(
                device_credentials.update()
                .where(dc.device_id == device_id, dc.revoked_at.is_(None))
                .values(**values)
            ).rowcount
        return bool(changed)

    def live(self) -> list[tuple[str, str]]:
        """(device id, hash) of every device that may connect."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(device_credentials.c.device_id, device_credentials.c.password_hash)
                .where(device_credentials.c.revoked_at.is_(None))
                .order_by(device_credentials.c.device_id)
            ).all()
        return [(r.device_id, r.password_hash) for r in rows]

    def password_file(self, engine: EngineAccount | None) -> str:
        """Mosquitto's `password_file`: the engine's account, then every live device."""
        lines = []
        if engine is not None:
            lines.append(f"{engine.username}:{mosquitto_hash(engine.password)}")
        lines += [f"{device_id}:{h}" for device_id, h in self.live()]
        return "\n".join(lines) + "\n"


def acl_file(prefix: str, engine_user: str | None) -> str:
    """Mosquitto's `acl_file`: `%u` is the device's user name, which is its id."""
    out = [
        "# devices: publish only under their own id, read only their own commands",
        f"pattern write {prefix}/v1/+/%u/telemetry",
        f"pattern write {prefix}/v1/+/%u/event",
        f"pattern readwrite {prefix}/v1/+/%u/status",
        f"pattern read {prefix}/v1/+/%u/cmd",
        "# ...and the fleet-wide requests (e.g. resend after the broker lost messages)",
        f"pattern read {prefix}/v1/fleet/all/cmd",
    ]
    if engine_user:
        out += [
            "",
            "# the engine: every device's messages in, commands out",
            f"user {engine_user}",
            f"topic read {prefix}/v1/#",
            f"topic write {prefix}/v1/+/+/cmd",
            "topic read $SYS/#",
        ]
    return "\n".join(out) + "\n"
