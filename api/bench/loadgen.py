"""Closed-loop HTTP load over keep-alive connections, printed as JSON (the fallback for wrk).

`python -m bench.loadgen URL SECONDS CONNECTIONS [HEADER:VALUE ...]`; runs in its own process
so it does not share an interpreter (or a GIL) with the process that measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

WARMUP_SECONDS = 0.5


async def _worker(
    client: httpx.AsyncClient, url: str, start: float, end: float, out: list[float], bad: list[int]
) -> None:
    while True:
        sent = time.perf_counter()
        if sent >= end:
            return
        try:
            response = await client.get(url)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        done = time.perf_counter()
        if done >= start:
            out.append(done - sent)
            if not ok:
                bad.append(1)


async def run(
    url: str, seconds: float, connections: int, headers: dict[str, str]
) -> dict[str, float]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    bad: list[int] = []
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10) as client:
        begin = time.perf_counter()
        start, end = begin + WARMUP_SECONDS, begin + WARMUP_SECONDS + seconds
        await asyncio.gather(
            *(_worker(client, url, start, end, latencies, bad) for _ in range(connections))
        )
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": pct(50) if latencies else float("nan"),
        "p99_ms": pct(99) if latencies else float("nan"),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "errors": len(bad),
    }


if __name__ == "__main__":
    url, seconds, connections = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    headers = dict(arg.split(":", 1) for arg in sys.argv[4:])
    print(json.dumps(asyncio.run(run(url, seconds, connections, headers))))
