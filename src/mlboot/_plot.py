"""Charts of runs' metrics over steps: ``mlboot runs plot`` and :func:`plot_metrics`.

matplotlib is the optional extra ``mlboot[plot]``: it is imported only here, only when a chart
is drawn, and without it :class:`~mlboot.exceptions.MissingExtraError` says which extra to
install.  The chart is drawn on matplotlib's ``Agg`` canvas directly (no ``pyplot``, no global
state, no display needed).

One panel per metric, one line per run.  The x axis is the step: the ``step`` each value was
logged with where every value of the metric on a run has one (local runs keep steps), else the
value's position (0, 1, 2, ... in logging order: Azure ML gives values without their steps).
Str values are not drawn; NaN leaves a gap and infinities are left out.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlboot._backends._seam import LocalRunFolders, MetricValue
from mlboot._localio import storage_error
from mlboot._run import Run
from mlboot._validate import path_text
from mlboot.exceptions import InvalidInputError, MissingExtraError

__all__ = ["plot_metrics"]

_MAX_PANELS = 12
_PANEL_INCHES = (7.0, 2.6)

Series = list[tuple[float, float]]


def _steps_and_values(run: Run) -> dict[str, list[tuple[int | None, MetricValue]]]:
    """Each metric's (step, value) pairs in logging order; steps where the backend keeps them."""
    backend = run.workspace.backend
    if isinstance(backend, LocalRunFolders):
        from mlboot._tracking_local import read_records  # noqa: PLC0415

        found: dict[str, list[tuple[int | None, MetricValue]]] = {}
        for name, value, step, _ in read_records(backend.run_folder(run.id)):
            found.setdefault(name, []).append((step, value))
        return found
    return {name: [(None, v) for v in values] for name, values in run.metrics().items()}


def _series(pairs: Sequence[tuple[int | None, MetricValue]]) -> Series:
    with_steps = all(step is not None for step, _ in pairs)
    points: Series = []
    for position, (step, value) in enumerate(pairs):
        if isinstance(value, str) or math.isinf(value):
            continue
        x = step if with_steps and step is not None else position
        points.append((float(x), float(value)))
    return points


def _numeric(series: Series) -> bool:
    return any(not math.isnan(y) for _, y in series)


def _checked(runs: object, output: object, metrics: object) -> Path:
    """The file to write, once ``plot_metrics``'s arguments are checked."""
    if not isinstance(runs, list | tuple) or not runs or not all(isinstance(r, Run) for r in runs):
        raise InvalidInputError(
            "runs", runs, "it must be a non-empty list of mlboot.Run", "pass [run] or [run, other]"
        )
    if not isinstance(metrics, list | tuple) or not all(isinstance(n, str) for n in metrics):
        raise InvalidInputError(
            "metrics", metrics, "it must be a list of metric names", "pass e.g. ['loss']"
        )
    target = Path(
        path_text("output", output, fix="name a PNG file to write, e.g. metrics.png", what="file")
    )
    if target.suffix.lower() != ".png":
        raise InvalidInputError(
            "output", str(output), "the chart is a PNG file", "name it e.g. metrics.png"
        )
    return target


def plot_metrics(
    runs: Sequence[Run], output: str | os.PathLike[str], metrics: Sequence[str] = ()
) -> tuple[Path, list[str]]:
    """Draw ``metrics`` (default: every numeric metric) of ``runs`` into the PNG ``output``.

    Returns the file written and the metrics drawn.  A metric named but logged by none of the
    runs raises :class:`~mlboot.exceptions.InvalidInputError` listing the ones there are.
    """
    target = _checked(runs, output, metrics)
    data = {run.id: _steps_and_values(run) for run in runs}
    drawable: dict[str, dict[str, Series]] = {}
    for run_id, found in data.items():
        for name, pairs in found.items():
            series = _series(pairs)
            if _numeric(series):
                drawable.setdefault(name, {})[run_id] = series
    names = list(metrics) if metrics else list(drawable)
    missing = [name for name in names if name not in drawable]
    known = ", ".join(map(repr, drawable)) or "none"
    if missing or not names:
        raise InvalidInputError(
            "metric",
            missing[0] if missing else None,
            f"the runs have no numeric metric of that name (numeric metrics: {known})",
            "name one of those, or name none to draw them all",
        )
    if len(names) > _MAX_PANELS:
        raise InvalidInputError(
            "metric",
            names,
            f"at most {_MAX_PANELS} metrics fit one chart ({len(names)} asked for or logged)",
            "name the metrics to draw after the run id",
        )
    figure = _figure(names, drawable, [run.id for run in runs])
    if target.is_dir():
        raise InvalidInputError(
            "output", str(output), "it is a folder, and the chart is a file", "name a file in it"
        )
    # Written beside the target, then renamed onto it: a link at the target is replaced, never
    # written through, and no half-written chart is ever left there.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(temporary, format="png", dpi=100)
        temporary.replace(target)
    except OSError as exc:
        raise storage_error(exc, "writing the chart", path=target) from exc
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
    return target, names


def _figure(
    names: Sequence[str], drawable: dict[str, dict[str, Series]], run_ids: list[str]
) -> Any:  # matplotlib's Figure: an optional import
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
    except ImportError as exc:
        raise MissingExtraError(
            "drawing metrics needs matplotlib, which is not installed. Fix: install mlboot's "
            "plot extra: python -m pip install 'mlboot[plot]' (or: python -m pip install "
            "matplotlib)",
            extra="plot",
        ) from exc
    width, height = _PANEL_INCHES
    figure = Figure(figsize=(width, height * len(names)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        for run_id in run_ids:
            series = drawable[name].get(run_id)
            if series:
                xs, ys = zip(*series, strict=True)
                ax.plot(xs, ys, marker="o", markersize=3, label=run_id)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(visible=True, alpha=0.3)
        if len(run_ids) > 1:
            ax.legend(fontsize="small")
    return figure
