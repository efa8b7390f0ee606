"""Signing in with a password (OAuth2's password flow): a signed token to send as
`Authorization: Bearer <token>`. Apps and scripts can use API keys instead."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request

from api.accounts import Accounts
from api.context import ApiContext
from api.deps import Db, context
from api.ratelimit import TokenBuckets
from api.schemas import Problem, Token

router = APIRouter(prefix="/api/v1/auth", tags=["sign in"])


@router.post(
    "/token",
    response_model=Token,
    responses={401: {"model": Problem}, 429: {"model": Problem}},
)
async def token(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=64, description="The account id")],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    db: Db,
    ctx: Annotated[ApiContext, Depends(context)],
) -> Token:
    """Form fields `username` (the account id) and `password` (`fleetcare users password`)."""
    # guessing is slowed per account: a few tries a minute
    limiter: TokenBuckets = request.app.state.login_limiter
    wait = limiter.take(username)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many sign-ins for {username}: retry in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    who = await asyncio.to_thread(Accounts(db).login, username, password)
    if who is None:
        raise HTTPException(
            401, "wrong account or password", headers={"WWW-Authenticate": "Bearer"}
        )
    return Token(
        access_token=ctx.tokens.issue(who.user_id),
        token_type="bearer",
        expires_in=int(ctx.tokens.ttl.total_seconds()),
    )
