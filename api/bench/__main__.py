"""`python -m bench [--quick] [--only SECTION ...] [--json PATH]`: run, print the table, save JSON.

Every row compares ours with a baseline measured in the same run (alternating, several rounds,
medians), because on a shared machine only ratios measured side by side mean something.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import backups, console_ws, dispatch, load, served, supervisor
from bench.processes import API_DIR
from bench.report import Row, machine, render, write_json
from vintagestory_api.logging import configure_logging

SECTIONS = (
    "dispatch",
    "http",
    "history",
    "responsiveness",
    "previews",
    "startup",
    "supervisor",
    "backups",
    "console-ws",
)
DEFAULT_JSON = API_DIR / "bench" / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="one short round of each (about 1 min)"
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)
    # The in-process schedulers' per-run INFO lines are filtered out, as in the served ones
    # (VS_LOG_LEVEL=WARNING); ERROR also hides the "skipped: scheduler is stopping" warnings of
    # fires due just as a trial shuts down.
    configure_logging("ERROR", "json")
    plan = served.QUICK if args.quick else served.FULL
    chosen = args.only or list(SECTIONS)
    info = machine()
    print(
        f"bench: {'quick' if args.quick else 'full'} run of {', '.join(chosen)} on "
        f"{info['nproc']} CPUs ({info['cpu_model']}), Python {info['python']}, "
        f"load {info['loadavg_at_start']}, HTTP load by {load.tool_name()}",
        flush=True,
    )
    if "wrk" not in load.tool_name():
        print(
            "bench: wrk not found; the Python load generator saturates before either server "
            "does, so HTTP ratios are pulled towards 1 (apt-get install wrk for real ones)",
            flush=True,
        )
    began = time.perf_counter()
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="vs-bench-"))
    try:
        bench = served.Bench(workdir, plan)
        stub = bench.stub()
        try:
            steps: dict[str, Callable[[], list[Row]]] = {
                "dispatch": lambda: dispatch.run(rounds=plan.rounds, fires=1 if args.quick else 2),
                "http": lambda: served.throughput_and_memory(bench),
                "responsiveness": lambda: served.responsiveness(bench),
                "previews": lambda: served.preview_storm(bench),
                "history": lambda: served.history_depth(bench),
                "startup": lambda: served.startup_and_idle(bench),
                "supervisor": lambda: supervisor.run(bench, quick=args.quick),
                "backups": lambda: backups.run(size_mib=128 if args.quick else 1024),
                "console-ws": lambda: console_ws.run(bench),
            }
            for name in SECTIONS:
                if name not in chosen:
                    continue
                if name == "startup" and not bench.payload.exists():
                    bench.payload.write_text('{"/healthz": {}, "/api/v1alpha1/jobs": {}}')
                step_began = time.perf_counter()
                rows += steps[name]()
                print(f"  {name}: {time.perf_counter() - step_began:.0f} s", flush=True)
        finally:
            stub.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - began
    print()
    print(render(rows))
    info["elapsed_seconds"] = round(elapsed, 1)
    options = {"quick": args.quick, "sections": chosen, "plan": plan.__dict__,
               "http_tool": load.tool_name()}  # fmt: skip
    write_json(args.json, rows, info, options)
    misses = sum(1 for row in rows if row.passed is False)
    print(f"\n{len(rows)} rows, {misses} missed their target; {elapsed:.0f} s; JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
