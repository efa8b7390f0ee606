"""Signed access tokens (JWT, HS256) for the console and for apps that sign in with a
password (OAuth2's password flow at `/api/v1/auth/token`).

A token names the account, when it was signed (to the millisecond) and when it expires;
it carries no role. Each request reads the account again (one indexed query, as for a
key), so disabling an account, changing its role, signing out or changing its password
(which set the account's cut-off: tokens signed before it are refused) takes effect at
once, not when its tokens expire."""

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
        claims = {
            "sub": user_id,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + self.ttl,
            "ims": int(now.timestamp() * 1000),  # iat has whole seconds only
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def subject(self, token: str) -> Signed | None:
        """The account a valid, unexpired token names and when it was signed, or None."""
        try:
            claims = jwt.decode(token, self.secret, algorithms=[ALGORITHM], audience=AUDIENCE)
        except jwt.PyJWTError:
            return None
        sub, ims = claims.get("sub"), claims.get("ims")
        if not isinstance(sub, str) or not isinstance(ims, int):
            return None
        return Signed(sub, datetime.fromtimestamp(ims / 1000, UTC))


@dataclass(frozen=True, slots=True)
class Signed:
    user_id: str
    at: datetime


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("ey")
