"""HEAD answered wherever GET is: the same status and headers, no body.

FastAPI routes answer only the methods they declare, so `HEAD /healthz` was 405 and
`wget --spider` and many container health checks failed. Declaring HEAD on every route would
add an operation per route to the OpenAPI document (and, as FastAPI derives operation ids from
a route's methods, could change the existing ones). Instead a HEAD is passed on as a GET and
only its response body is dropped, so every layer and route (the key check included) answers
it exactly as it answers the GET.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What routing writes into the scope it is given; the layers outside (the access log and the
# metrics label the request by its route) read it from theirs.
_ROUTING_KEYS = ("router", "route", "endpoint", "path_params")


class HeadAsGetMiddleware:
    """Pure ASGI middleware: a HEAD request reaches the app as a GET, its body is dropped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server reads the method from its own scope to know not to send a body.
        as_get = {**scope, "method": "GET"}

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(as_get, receive, send_headers_only)
        finally:
            for key in _ROUTING_KEYS:
                if key in as_get and key not in scope:
                    scope[key] = as_get[key]
