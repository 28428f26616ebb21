"""Refusing a WebSocket so that the client can read why.

A close before the handshake is accepted reaches the client as a bare HTTP 403, with no close
code or reason. So a WebSocket route accepts first, then refuses: it sends the error envelope
as one message and closes with 4000 + the HTTP status the same error has elsewhere (4401
unauthorised, 4403 forbidden, 4422 invalid input).
"""

from __future__ import annotations

import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from vintagestory_api.errors import ApiError, exc_body

# RFC 6455 caps a close frame's reason at 123 bytes of UTF-8.
MAX_CLOSE_REASON_BYTES = 123


def close_code(error: ApiError) -> int:
    return 4000 + error.status_code


def close_reason(message: str) -> str:
    encoded = message.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return message
    cut = encoded[: MAX_CLOSE_REASON_BYTES - len("…".encode())].decode("utf-8", "ignore")
    return cut + "…"


async def refuse(websocket: WebSocket, error: ApiError) -> None:
    """Send `error` as the error envelope, then close with its code; the socket is accepted."""
    # A client that already left needs no answer.
    with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
        await websocket.send_json(exc_body(error))
        await websocket.close(code=close_code(error), reason=close_reason(error.message))
