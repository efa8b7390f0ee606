"""How a long-running part lives through an outage of what it reads: the database or the
telemetry store going away fails one round of its loop, never the part. The change is
logged once when it starts and once when it ends, not every round."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from db.errors import DatabaseUnavailable
from telemetry.errors import StoreUnavailable

# what an unreachable server raises through the engine's layers: the next round retries
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    StoreUnavailable,
    sa.exc.OperationalError,
)


@dataclass
class Outage:
    """One part's outage state: `failed` after a round that met one, `ok` after one that
    did not; each logs only when the state changes."""

    log: logging.Logger
    what: str  # e.g. "evaluation pass": the round that fails and comes back
    since: float | None = field(default=None, init=False)

    def failed(self, exc: Exception) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.log.error(
                f"{self.what} failed; retrying every interval",
                extra={"kv": {"error": str(exc).splitlines()[0][:300]}},
            )

    def ok(self) -> None:
        if self.since is not None:
            self.log.info(
                f"{self.what} works again",
                extra={"kv": {"outage_s": round(time.monotonic() - self.since, 1)}},
            )
            self.since = None
