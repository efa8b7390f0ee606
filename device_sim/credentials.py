"""Per-device MQTT credentials: user name = device id, password derived from a fleet secret.

Derived rather than stored, so a fleet of any size needs no credential file on the
simulator's side, and the broker can be provisioned from the same secret
(`fleetcare sim credentials` writes `user:password` lines for `mosquitto_passwd -U`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator


def device_password(secret: str, device_id: str) -> str:
    return hmac.new(secret.encode(), device_id.encode(), hashlib.sha256).hexdigest()[:32]


def password_lines(secret: str, device_ids: Iterable[str]) -> Iterator[str]:
    """`device_id:password`, one a line: Mosquitto's plain-text format before hashing."""
    for device_id in device_ids:
        yield f"{device_id}:{device_password(secret, device_id)}"
