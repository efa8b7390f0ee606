"""Signed access tokens (JWT, HS256) for the console and for apps that sign in with a
password (OAuth2's password flow at `/api/v1/auth/token`).

A token names the account and expires; it carries no role. Each request reads the
account again (one indexed query, as for a key), so disabling an account or changing
its role takes effect at once, not when its tokens expire."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
AUDIENCE = "fleetcare"


@dataclass(frozen=True)
class Tokens:
    secret: str
    ttl: timedelta = timedelta(hours=8)

    @classmethod
    def ephemeral(cls, ttl: timedelta = timedelta(hours=8)) -> Tokens:
        """A secret of this process only: tokens die with it (set `api.jwt_secret` to
        keep them valid across restarts and shared between API processes)."""
        return cls(secrets.token_urlsafe(32), ttl)

    def issue(self, user_id: str, *, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        claims = {"sub": user_id, "aud": AUDIENCE, "iat": now, "exp": now + self.ttl}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def subject(self, token: str) -> str | None:
        """The account a valid, unexpired token names, or None."""
        try:
            claims = jwt.decode(token, self.secret, algorithms=[ALGORITHM], audience=AUDIENCE)
        except jwt.PyJWTError:
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) else None


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("ey")
