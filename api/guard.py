"""The API's outer wall, one ASGI middleware in front of everything else: what a request
may carry is settled before any of it is parsed.

* **Size.** A body over the limit is refused with 413 from its `Content-Length`, or
  as soon as a streamed body passes it, before a byte is parsed. Technicians'
  completion photos (multipart) get their own, larger limit, and stream through to the
  parser (which spools them to disk) instead of being held in memory here.
* **Who, first.** An `/api/v1` request with a body (all but signing in) must carry a
  valid credential before its body is read: an unauthenticated client cannot make the
  server parse ten megabytes of JSON. The route's own `Caller` then reuses what was
  found here, so a request is authenticated (and rate-limited) once.
* **Text.** PostgreSQL stores no NUL character in text; one in a path, a query or a
  form or JSON body is refused here with 422 and a message, wherever it would have
  gone (a filter, an id, a comment, a user name), instead of failing deep inside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PRINCIPAL = "fleetcare.principal"  # the scope key `authenticate` reuses
MAX_BODY = 1 << 20  # JSON and forms: 1 MB, far above any valid one (a profile, 500 ids)
SIGN_IN = "/api/v1/auth/token"
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NUL_MESSAGE = "text may not contain the NUL character (\\u0000, %00): remove it"

Authenticate = Callable[[Request], Awaitable[object]]


class Guard:
    """`app.add_middleware(Guard, authenticate=..., max_upload=...)`, added last so it
    runs first."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        max_upload: int,
        max_body: int = MAX_BODY,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.max_body = max_body
        self.max_upload = max(max_upload, max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
            await _refuse(scope, receive, send, 422, NUL_MESSAGE)
            return
        if scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.max_upload if kind == "multipart/form-data" else self.max_body
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(scope, receive, send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _refuse(scope, receive, send, 413, _too_large(limit))
                return
        if scope["path"].startswith("/api/v1/") and scope["path"] != SIGN_IN:
            try:
                scope[PRINCIPAL] = await self.authenticate(Request(scope))
            except HTTPException as exc:
                await _refuse(scope, receive, send, exc.status_code, exc.detail, exc.headers)
                return
        if kind == "multipart/form-data":  # photos: streamed to the parser, never held whole
            await self.app(scope, _bounded(receive, limit), send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _refuse(scope, receive, send, 413, _too_large(limit))
                return
            if not message.get("more_body", False):
                break
        if has_nul(kind, bytes(body)):
            await _refuse(scope, receive, send, 422, NUL_MESSAGE)
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def has_nul(kind: str, body: bytes) -> bool:
    """A NUL that would reach text: raw, escaped in JSON or percent-encoded in a form.
    Multipart bodies carry photos (binary): the route checks their text parts with this,
    as JSON."""
    if kind == "multipart/form-data":
        return False
    if b"\x00" in body:
        return True
    if kind == "application/x-www-form-urlencoded":
        return b"%00" in body
    return b"\\u0000" in body


def _bounded(receive: Receive, limit: int) -> Receive:
    """The body as it comes, cut off past `limit` bytes: a streamed upload with no
    Content-Length ends as if the client had gone (the parser stops, nothing is kept)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            return {"type": "http.disconnect"}
        return message

    return counted


def _too_large(limit: int) -> str:
    return f"the request body is over {limit // 1024:,} KB: send less at once"


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, already read, handed to the app as one message; later reads wait for
    the client's disconnect as usual."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))
    if status == 413:
        response.headers["Connection"] = "close"  # the rest of the body is not read
    await response(scope, receive, send)
