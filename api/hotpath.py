"""The consumer app's most frequent request, device health, answered before FastAPI's
router: a middleware matches `GET /api/v1/devices/{id}/health` and calls the route's own
handler (`routes.devices.health_response`). Errors go through the app's exception
handlers, so a client cannot tell the two paths apart; the route stays declared in the
app (OpenAPI, and every other method on the path).

Why: the router tries its 58 routes one by one and FastAPI then prepares the request
for the endpoint. That was a quarter of a worker's CPU on this route (py-spy, one
worker at its ceiling), and none of it does anything device health needs.
"""

from __future__ import annotations

import inspect
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routes.devices import health_response

HEALTH = re.compile(r"/api/v1/devices/([^/]+)/health")


class HotPaths:
    """ASGI middleware (`app.add_middleware(HotPaths)`): device health straight to its
    handler; everything else to the app as usual."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = HEALTH.fullmatch(_route_path(scope))
            if match is not None:
                request = Request(scope, receive)
                try:
                    response = await health_response(request, match[1])
                except Exception as exc:
                    response = await _handled(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the app's root path (behind a proxy that
    serves it under a prefix), as Starlette strips it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _handled(request: Request, exc: Exception) -> Response:
    """What the app's exception handlers make of `exc` (the nearest class first), as
    Starlette's exception middleware would; re-raised if none handles it."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        handler = handlers.get(kind)
        if handler is not None:
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            return response  # type: ignore[no-any-return]
    raise exc
