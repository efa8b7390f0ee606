"""Requests per key, as a token bucket: a key may burst a minute's allowance, then runs
at the steady rate. In memory, per process: behind several API processes each keeps its
own count (docs/api.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBuckets:
    per_minute: int
    clock: Callable[[], float] = field(default=time.monotonic)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0 if the request may go on, else the seconds until it may."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * self.per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * 60.0 / self.per_minute
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0
