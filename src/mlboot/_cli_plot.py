"""``mlboot runs plot RUN_ID [METRIC...] [--with RUN_ID]... [-o FILE.png]``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mlboot._run import Run

__all__ = ["add_arguments", "plot"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Draw the metrics of run RUN_ID over steps into a PNG file, one panel per metric; "
        "--with adds other runs to compare, one line per run. Needs mlboot's plot extra "
        "(matplotlib): python -m pip install 'mlboot[plot]'."
    )
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument(
        "metrics", metavar="METRIC", nargs="*", help="the metrics to draw (default: all numeric)"
    )
    parser.add_argument(
        "--with",
        dest="others",
        action="append",
        default=[],
        metavar="RUN_ID",
        help="another run to compare (repeatable)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE.png",
        help="the file to write (default: RUN_ID.png here)",
    )


def plot(options: argparse.Namespace, get: Callable[[str], Run]) -> dict[str, Any]:
    from mlboot._plot import plot_metrics  # noqa: PLC0415  (matplotlib only when drawing)

    runs = [get(run_id) for run_id in dict.fromkeys([options.run_id, *options.others])]
    output = options.output or f"{options.run_id}.png"
    written, names = plot_metrics(runs, output, options.metrics)
    return {"file": str(written), "run_ids": [run.id for run in runs], "metrics": names}
