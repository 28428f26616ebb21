"""Statistics, result rows, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Compare = Literal["ratio_max", "ratio_min", "abs_max"]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


@dataclass
class Row:
    """One table row: our median against the baseline's, and the target it is held to.

    `compare` says how the target reads: `ratio_max` ours/baseline <= target, `ratio_min`
    ours/baseline >= target, `abs_max` ours <= target (in `unit`); `extra_max` adds an absolute
    ceiling on ours to a ratio target.
    """

    section: str
    name: str
    unit: str
    ours: float
    baseline: float
    baseline_name: str
    compare: Compare
    target: float
    extra_max: float | None = None
    rounds: int = 0
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if self.baseline == 0 or math.isnan(self.baseline):
            return math.nan
        return self.ours / self.baseline

    @property
    def target_text(self) -> str:
        if self.compare == "ratio_max":
            text = f"<= {self.target:g}x"
        elif self.compare == "ratio_min":
            text = f">= {self.target:g}x"
        else:
            text = f"<= {self.target:g} {self.unit}"
        if self.extra_max is not None:
            text += f", < {self.extra_max:g} {self.unit}"
        return text

    @property
    def passed(self) -> bool | None:
        """None: informational row (no target)."""
        if math.isnan(self.target):
            return None
        if self.compare == "abs_max":
            ok = self.ours <= self.target
        elif self.compare == "ratio_max":
            ok = self.ratio <= self.target
        else:
            ok = self.ratio >= self.target
        if self.extra_max is not None:
            ok = ok and self.ours < self.extra_max
        return ok

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data.update(ratio=_finite(self.ratio), target_text=self.target_text, passed=self.passed)
        data["ours"], data["baseline"] = _finite(self.ours), _finite(self.baseline)
        return data


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _num(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: Sequence[Row]) -> str:
    header = ("section", "measure", "unit", "ours", "baseline", "ratio", "target", "result")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        verdict = {True: "PASS", False: "MISS", None: "info"}[row.passed]
        ratio = "-" if math.isnan(row.ratio) else f"{row.ratio:.2f}x"
        lines.append(
            (
                row.section,
                row.name,
                row.unit,
                _num(row.ours),
                _num(row.baseline),
                ratio,
                row.target_text if row.passed is not None else "-",
                verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {3, 4, 5}
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append(" | ".join(cells).rstrip())
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: Sequence[Row]) -> str:
    out = [
        "| section | measure | ours | baseline | ratio | target | result |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        verdict = {True: "PASS", False: "**MISS**", None: "info"}[row.passed]
        ratio = "-" if math.isnan(row.ratio) else f"{row.ratio:.2f}x"
        target = row.target_text if row.passed is not None else "-"
        out.append(
            f"| {row.section} | {row.name} ({row.unit}) | {_num(row.ours)} | "
            f"{_num(row.baseline)} ({row.baseline_name}) | {ratio} | {target} | {verdict} |"
        )
    return "\n".join(out)


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_at_start": load,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_json(
    path: Path, rows: Sequence[Row], info: dict[str, object], options: dict[str, object]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "options": options, "rows": [row.to_json() for row in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
