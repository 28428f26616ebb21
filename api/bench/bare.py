"""The baseline: a bare FastAPI app under plain uvicorn, `python -m bench.bare` (port from
`BENCH_PORT`).

It imports nothing of ours. `GET /healthz` and `GET /api/v1alpha1/jobs` return the JSON
documents in the file named by `BENCH_PAYLOAD` (captured from our service, so the bodies are the
same size) as plain dicts, the way a minimal FastAPI app would; uvicorn runs with the same
options as ours (no access log, no server header) and logs warnings only.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

JOBS_PATH = "/api/v1alpha1/jobs"


def create_bare_app() -> FastAPI:
    payloads: dict[str, Any] = json.loads(Path(os.environ["BENCH_PAYLOAD"]).read_text())
    health, jobs = payloads["/healthz"], payloads[JOBS_PATH]
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> Any:
        return health

    @app.get(JOBS_PATH)
    async def list_jobs() -> Any:
        return jobs

    return app


if __name__ == "__main__":
    uvicorn.run(
        "bench.bare:create_bare_app",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ["BENCH_PORT"]),
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    sys.exit(0)
