"""A slow local stand-in for the Vintage Story APIs: `python -m bench.stub PORT DELAY_MS`.

asyncio, HTTP/1.1 keep-alive, GET only. `/slow` answers after DELAY_MS; `/stable.json`,
`/unstable.json` and `/api/mod/{id}` answer at once with the test fixtures (so the built-in jobs
parse real documents); anything else is a 404. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "vintagestory"
MAX_HEADER_BYTES = 64 * 1024


def _fixture(name: str) -> bytes | None:
    path = FIXTURES / name
    return path.read_bytes() if path.is_file() else None


class Stub:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.slow_body = b'{"ok": true, "padding": "' + b"x" * 2000 + b'"}'

    async def body_for(self, path: str) -> tuple[int, bytes]:
        if path == "/slow":
            await asyncio.sleep(self.delay)
            return 200, self.slow_body
        if path in ("/stable.json", "/unstable.json"):
            body = _fixture(path.lstrip("/"))
            return (200, body) if body is not None else (200, b"{}")
        match = re.fullmatch(r"/api/mod/([A-Za-z0-9_-]+)", path)
        if match:
            body = _fixture(f"mod-{match[1]}.json") or _fixture("mod-notfound.json")
            return 200, body or b'{"statuscode": "404"}'
        return 404, b'{"error": "no such path"}'

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > MAX_HEADER_BYTES:
                    break
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = request_line.split(" ")
                path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
                status, body = await self.body_for(path)
                reason = "OK" if status == 200 else "Not Found"
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(port: int, delay: float) -> None:
    stub = Stub(delay)
    server = await asyncio.start_server(stub.handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]) / 1000))
