"""Drive HTTP load: `wrk` when it is installed, else bench.loadgen in a separate process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from bench.processes import API_DIR, child_env

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class LoadResult:
    tool: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


def tool_name() -> str:
    return "wrk" if shutil.which("wrk") else "python bench.loadgen (asyncio+httpx)"


def measure(url: str, seconds: float, connections: int, headers: Mapping[str, str]) -> LoadResult:
    wrk = shutil.which("wrk")
    if wrk:
        return _wrk(wrk, url, seconds, connections, headers)
    return _loadgen(url, seconds, connections, headers)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def _wrk(
    wrk: str, url: str, seconds: float, connections: int, headers: Mapping[str, str]
) -> LoadResult:
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if latency is None or p50 is None or p99 is None:
        raise ValueError(f"cannot read wrk output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors:.*", out)
    errors = int(non_2xx[1]) if non_2xx else 0
    if sock:
        errors += sum(int(n) for n in re.findall(r"\d+", sock[0]))
    return LoadResult("wrk", rps, _ms(p50[1]), _ms(p99[1]), _ms(latency[3]), errors)


def _loadgen(url: str, seconds: float, connections: int, headers: Mapping[str, str]) -> LoadResult:
    argv = [sys.executable, "-m", "bench.loadgen", url, str(seconds), str(connections)]
    argv += [f"{name}:{value}" for name, value in headers.items()]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 60,
        cwd=API_DIR, env=child_env({}),
    ).stdout  # fmt: skip
    data = json.loads(out)
    return LoadResult(
        "loadgen",
        float(data["rps"]),
        float(data["p50_ms"]),
        float(data["p99_ms"]),
        float(data["max_ms"]),
        int(data["errors"]),
    )
