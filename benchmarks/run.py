"""mlboot against the raw SDK, side by side, as ratios: `nox -s bench` (or `--quick`)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Figure, interleave, table


def _import_seconds(module: str) -> float:
    code = (
        "import time, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"t = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return float(out.stdout.strip().splitlines()[-1])


def bench_import(repetitions: int) -> Figure:
    figure = Figure(
        name="1. import",
        unit="s",
        baseline_label="import azureml.core",
        mlboot_label="import mlboot",
        target="<= 0.05",
        meets=lambda ratio: ratio <= 0.05,  # noqa: PLR2004
        note="time of the import statement in a fresh interpreter, start-up excluded",
    )
    return interleave(
        figure,
        lambda: _import_seconds("azureml.core"),
        lambda: _import_seconds("mlboot"),
        repetitions,
    )


BENCHMARKS = {"import": bench_import}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition, small inputs")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    repetitions = 1 if args.quick else args.repetitions
    figures = [BENCHMARKS[name](repetitions) for name in (args.only or BENCHMARKS)]
    text = table(figures)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
