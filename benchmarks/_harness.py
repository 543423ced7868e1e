"""Side-by-side measurement: interleaved repetitions, medians, ratios, a small table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One comparison: mlboot's measurement against the baseline's, taken in the same run."""

    name: str
    unit: str
    baseline_label: str
    mlboot_label: str
    target: str
    meets: Callable[[float], bool]
    baseline: list[float] = field(default_factory=list)
    mlboot: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float:
        return statistics.median(self.mlboot) / statistics.median(self.baseline)

    def row(self) -> str:
        def span(values: list[float]) -> str:
            return f"{statistics.median(values):.4g} ({min(values):.4g}-{max(values):.4g})"

        verdict = "met" if self.meets(self.ratio) else "MISSED"
        return (
            f"| {self.name} | {self.mlboot_label}: {span(self.mlboot)} {self.unit} | "
            f"{self.baseline_label}: {span(self.baseline)} {self.unit} | {self.ratio:.3g} | "
            f"{self.target} | {verdict} |"
        )


def interleave(
    figure: Figure,
    run_baseline: Callable[[], float],
    run_mlboot: Callable[[], float],
    repetitions: int,
) -> Figure:
    """Alternate the two sides (and which goes first) so drift hits both alike."""
    for index in range(repetitions):
        order = [(figure.baseline, run_baseline), (figure.mlboot, run_mlboot)]
        if index % 2:
            order.reverse()
        for sink, run in order:
            sink.append(run())
    return figure


def side_by_side(
    name: str,
    baseline: tuple[str, Callable[[], float]],
    ours: tuple[str, Callable[[], float]],
    repetitions: int,
    *,
    at_most: float | None,
    unit: str = "s",
) -> Figure:
    """A figure measured now: ``(label, measure)`` for each side; the target is a ratio cap.

    ``at_most=None``: the ratio is reported with no target.
    """
    if at_most is None:
        target, meets = "(ratio only)", _always
    else:
        target, meets = f"<= {at_most:g}", lambda ratio: ratio <= at_most
    figure = Figure(
        name=name,
        unit=unit,
        baseline_label=baseline[0],
        mlboot_label=ours[0],
        target=target,
        meets=meets,
    )
    return interleave(figure, baseline[1], ours[1], repetitions)


def _always(ratio: float) -> bool:
    del ratio
    return True


def explain(figure: Figure, note: str, missed: str = "") -> Figure:
    """Set the figure's note; add ``missed`` (why, and the plan) only if the target was missed."""
    figure.note = note
    if missed and not figure.meets(figure.ratio):
        figure.note += " " + missed
    return figure


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def table(figures: list[Figure]) -> str:
    head = (
        "| benchmark | mlboot: median (min-max) | baseline: median (min-max) | ratio | target | |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    lines = [head, *(figure.row() for figure in figures)]
    notes = [f"- {figure.name}: {figure.note}" for figure in figures if figure.note]
    return "\n".join(lines + (["", *notes] if notes else []))
