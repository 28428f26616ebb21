"""CORS with the error envelope: Starlette's middleware, except that a refused preflight
answers JSON like every other error instead of a `text/plain` line."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from vintagestory_api.errors import CorsPreflightRefused, error_response

# Starlette's text for a refused preflight: this prefix, then what was refused.
_REFUSED_PREFIX = "Disallowed CORS "
# Headers of the text answer that do not describe the JSON one.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


class EnvelopeCorsMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode().removeprefix(_REFUSED_PREFIX)
        headers = {k: v for k, v in response.headers.items() if k not in _BODY_HEADERS}
        error = CorsPreflightRefused(f"CORS preflight refused: {refused} not allowed")
        return error_response(error, headers=headers)
