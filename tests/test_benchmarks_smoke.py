"""The benchmarks cannot rot: their quick mode runs as part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[1] / "benchmarks" / "run.py"


def test_quick_mode_prints_a_table_row_with_a_numeric_ratio() -> None:
    result = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, str(BENCHMARKS), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 1. import")]
    assert len(rows) == 1
    ratio = float(rows[0].split("|")[4])
    assert 0 < ratio < 1
