"""The benchmarks cannot rot: their quick mode runs as part of the suite."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path


def _has_v2() -> bool:
    try:
        return importlib.util.find_spec("azure.ai.ml") is not None
    except ModuleNotFoundError:  # no azure package at all
        return False


_HAS_V2 = _has_v2()

BENCHMARKS = Path(__file__).parents[2] / "benchmarks" / "run.py"
ROWS = (
    "1. import",
    "1b. import and first use",
    "2. reject oversized folder",
    "2b. reject too many files",
    "3. pre-check allowed tree",
    "4. remote calls",
    "4b. status polls per run-hour",
    "6. whole workflow",
    "5. local run overhead",
    "5b. local run overhead, 1 s script",
    "6. local show_output line latency",
    "6b. Azure ML show_output line latency",
    "7. local input, unchanged second upload",
    "7b. local input, first upload",
    "7c. local input, unchanged second upload vs SDK",
)
# The v2 benchmarks (issue 18), when the v2 extra is installed.
V2_ROWS = (
    "8. import, v2",
    "9. v2 submit, ignored files",
    "10. v2 whole workflow, wall time",
    "10b. v2 whole workflow, requests",
)


def test_quick_mode_prints_a_row_with_a_numeric_ratio_per_benchmark() -> None:
    # A subprocess: the benchmarks start the emulator and patch the SDK process-wide.
    result = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, str(BENCHMARKS), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    for name in ROWS + (V2_ROWS if _HAS_V2 else ()):
        matching = [row for row in rows if row.startswith(f"| {name}")]
        assert len(matching) == 1, (name, result.stdout)
        ratio = float(matching[0].split("|")[4])
        assert math.isfinite(ratio), matching[0]
        assert ratio > 0, matching[0]
    import_ratio = float(next(r for r in rows if r.startswith("| 1. import")).split("|")[4])
    assert import_ratio < 1
