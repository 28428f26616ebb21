"""The HTTP protocol uvicorn serves with: httptools (fast, C) when installed, answering a request
its parser refuses with the error envelope instead of uvicorn's plain-text 400.

httptools gives up on a request head past about 64 KiB (a 200 KB URL): uvicorn then writes
`400 Invalid HTTP request received.` as text/plain and closes. Here the same refusal is a JSON
envelope, 414 `URI_TOO_LONG` when the URL was what grew too long. Smaller oversize URLs and
headers reach the app, which answers 414/431 itself (`request_limits.py`). Without httptools,
uvicorn's h11 protocol is used, with its head limit raised so those requests reach the app too.
"""

from __future__ import annotations

import json
import os
from typing import Any

from vintagestory_api.errors import error_body

from .request_limits import MAX_URL_BYTES


def _response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps(error_body(code, message)).encode()
    # Like every other answer, with a request id (this one reaches no middleware).
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"x-request-id: {os.urandom(16).hex()}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def http_protocol() -> Any:
    """What to give `uvicorn.Config(http=...)`: our httptools protocol, or "h11"."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed on this platform
        return "h11"

    class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            url = getattr(self, "url", b"")
            if len(url) > MAX_URL_BYTES:
                data = _response(
                    414, "URI Too Long", "URI_TOO_LONG",
                    f"the URL is longer than {MAX_URL_BYTES} bytes",
                )  # fmt: skip
            else:
                data = _response(400, "Bad Request", "BAD_REQUEST", "invalid HTTP request")
            self.transport.write(data)
            self.transport.close()

    return EnvelopeHttpToolsProtocol
