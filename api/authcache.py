"""Who a credential belongs to, remembered for a few seconds in each API process.

Every request names its key or token; reading the account for each one costs the database
a round trip as large as the consumer app's whole device-health read. API gateways cache
this (AWS API Gateway keeps an authorizer's answer for up to an hour); we keep it for
`api.auth_cache_s` seconds (default 5), so a revoked key or a disabled account stops
working within that. Unknown credentials are not remembered: a new key works at once.
0 turns the cache off."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from api.accounts import Principal


@dataclass
class CredentialCache:
    ttl_s: float
    max_entries: int = 100_000
    clock: Callable[[], float] = field(default=time.monotonic)
    _known: dict[bytes, tuple[Principal, float]] = field(default_factory=dict)

    def get(self, credential: str) -> Principal | None:
        if self.ttl_s <= 0:
            return None
        hit = self._known.get(_digest(credential))
        if hit is None or hit[1] <= self.clock():
            return None
        return hit[0]

    def put(self, credential: str, who: Principal) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._known) >= self.max_entries:  # crude but bounded: start again
            self._known.clear()
        self._known[_digest(credential)] = (who, self.clock() + self.ttl_s)


def _digest(credential: str) -> bytes:
    # the map holds digests, not the keys themselves
    return hashlib.sha256(credential.encode()).digest()
