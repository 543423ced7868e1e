"""The in-script API: what a training script calls, wherever it runs.

One training script works unchanged on Azure ML, under mlboot's local backend, and when started
by hand with ``python train.py``:

- on Azure ML (the variables ``AZUREML_RUN_ID`` and ``AZUREML_SERVICE_ENDPOINT`` that Azure ML
  sets for every run are present) metrics go to ``azureml.core.Run.get_context()``; azureml-core
  is imported then, and only then;
- in a job of the azureml-v2 backend (azure-ai-ml), which sets ``MLBOOT_TRACKING=mlflow`` in
  every job it submits, they go through MLflow (``mlflow.log_metric``, to the tracking URI and run
  Azure ML sets for the job), as SDK v2 has it; MLflow is imported then, and only then;
- under the local backend (``MLBOOT_RUN_DIR`` is set, which the local backend does and Azure ML
  never does) they are appended to the run's ``metrics.jsonl``;
- anywhere else they are dropped, and one DEBUG message on the ``mlboot`` logger says so.

The local backend is checked first: a local run also carries ``AZUREML_RUN_ID`` and friends, for
scripts that read them, but never ``AZUREML_SERVICE_ENDPOINT``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, SupportsFloat, TypeAlias

from mlboot._backends._seam import MetricValue
from mlboot._backends.azureml_v2._in_run import TRACKING_VARIABLE
from mlboot._localio import translated
from mlboot._log import logger
from mlboot.exceptions import InvalidInputError, LocalStorageError

__all__ = [
    "METRICS_FILE",
    "RUN_DIR_VARIABLE",
    "TRACKING_VARIABLE",
    "Destination",
    "current_destination",
    "log_metric",
    "log_metrics",
    "output_dir",
    "read_metrics",
]


RUN_DIR_VARIABLE = "MLBOOT_RUN_DIR"
"""Set by the local backend to the run's folder (absolute); its presence means "a local run"."""

METRICS_FILE = "metrics.jsonl"
"""The local run's metrics: one JSON object per line, in logging order."""

OUTPUTS_FOLDER = "outputs"
"""The folder, relative to the working directory, whose files a run keeps (as on Azure ML)."""

_AZUREML_MARKERS = ("AZUREML_RUN_ID", "AZUREML_SERVICE_ENDPOINT")

Destination: TypeAlias = Literal["azureml", "mlflow", "local", "none"]
"""Where :func:`log_metric` sends metrics in this process."""

_state_lock = threading.Lock()
_azureml_run: object | None = None
_said_dropped = False


def current_destination() -> Destination:
    """Where metrics logged in this process go: ``"azureml"``, ``"mlflow"``, ``"local"`` or
    ``"none"``."""
    if os.environ.get(RUN_DIR_VARIABLE):
        return "local"
    if os.environ.get(TRACKING_VARIABLE) == "mlflow":
        return "mlflow"
    if all(os.environ.get(name) for name in _AZUREML_MARKERS):
        return "azureml"
    return "none"


def _checked_value(name: object, value: object) -> MetricValue:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(
            "name", name, "a metric name must be a non-empty str", "pass a name such as 'loss'"
        )
    refused = InvalidInputError(
        "value",
        value,
        f"metric {name!r} must be a number or a str, not {type(value).__name__}",
        "log a number (e.g. loss.item() for a tensor) or a str",
    )
    if isinstance(value, bool):
        # True would be recorded as 1 without a word.
        raise refused
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    # Anything float() takes: numpy and torch scalars, Fraction, Decimal...
    if isinstance(value, SupportsFloat):
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            return float(value)
    raise refused


def _checked_step(step: object) -> int | None:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
        raise InvalidInputError(
            "step", step, "it must be an int >= 0, or None", "pass the epoch or iteration number"
        )
    return int(step)


def log_metric(name: str, value: SupportsFloat | str, step: int | None = None) -> None:
    """Log one value of the metric ``name`` for the current run.

    ``value`` is a number (an int, a float with NaN and infinities included, a numpy or torch
    scalar: anything ``float()`` takes, except a bool) or a str.  ``step`` (an int >= 0) orders
    values on an axis, as in ``azureml.core.Run.log``: Azure ML expects either every value of
    a metric to have a step or none.

    On Azure ML this calls ``Run.get_context().log(name, value, step=step)``, and in a job of the
    azureml-v2 backend ``mlflow.log_metric(name, value, step=step)`` (numbers only: a str there
    is an :class:`~mlboot.exceptions.InvalidInputError`, and MLflow missing from the job's
    environment a :class:`~mlboot.exceptions.MissingExtraError`); under the local backend the
    value is appended to the run's ``metrics.jsonl``; elsewhere it is dropped (see the module
    documentation).  A bad name, value or step raises
    :class:`~mlboot.exceptions.InvalidInputError` everywhere, so a mistake shows up in the first
    local try, not hours into a run on Azure ML.
    """
    checked = _checked_value(name, value)
    checked_step = _checked_step(step)
    destination = current_destination()
    if destination == "mlflow":
        _refuse_text_for_mlflow(name, checked)
        from mlboot._backends.azureml_v2._in_run import (  # noqa: PLC0415  (in a v2 job only)
            log_metric as log_to_mlflow,
        )

        log_to_mlflow(name, float(checked), checked_step)
    elif destination == "local":
        _append_local(Path(os.environ[RUN_DIR_VARIABLE]), name, checked, checked_step)
    elif destination == "azureml":
        run = _azureml_context()
        if checked_step is None:
            run.log(name, checked)  # type: ignore[attr-defined]  # azureml-core is untyped
        else:
            run.log(name, checked, step=checked_step)  # type: ignore[attr-defined]
    else:
        _say_dropped_once()


def log_metrics(metrics: Mapping[str, SupportsFloat | str], step: int | None = None) -> None:
    """Log several metrics at once, e.g. ``log_metrics({"loss": 0.1, "acc": 0.9}, step=3)``.

    Every name and value is checked before any is logged.
    """
    if not isinstance(metrics, Mapping):
        raise InvalidInputError(
            "metrics",
            metrics,
            "it must be a mapping of metric names to values",
            "pass a dict such as {'loss': 0.1}",
        )
    to_mlflow = current_destination() == "mlflow"
    for name, value in metrics.items():
        checked = _checked_value(name, value)
        if to_mlflow:
            _refuse_text_for_mlflow(name, checked)
    for name, value in metrics.items():
        log_metric(name, value, step)


def output_dir() -> Path:
    """The run's ``outputs`` folder, created if needed: files written there are kept.

    On Azure ML and under the local backend it is ``./outputs`` in the run's working directory,
    whose files are collected when the script ends; elsewhere it is ``./outputs`` too, so the
    script behaves the same when started by hand.
    """
    folder = Path.cwd() / OUTPUTS_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. ./outputs is a file
        raise LocalStorageError(
            f"cannot create the outputs folder {str(folder)!r}: {exc.strerror or exc}. Fix: "
            "move away the file of that name, or make the working directory writable.",
            errno=exc.errno,
            filename=str(folder),
        ) from exc
    return folder


def _append_local(run_dir: Path, name: str, value: MetricValue, step: int | None) -> None:
    from mlboot._tracking_local import append_metric  # noqa: PLC0415  (stdlib only)

    with translated(f"mlboot.log_metric: recording {name!r}", path=run_dir / METRICS_FILE):
        append_metric(run_dir, name, value, step)


def read_metrics(run_dir: Path) -> dict[str, list[MetricValue]]:
    """Every metric a local run logged, by name, in logging order (a torn last line is skipped).

    What ``mlboot.log_metric`` logged and what the script logged through MLflow or
    azureml-core's run context, merged (see :mod:`mlboot._tracking_local`).
    """
    from mlboot._tracking_local import read_metrics as read_all  # noqa: PLC0415

    return read_all(run_dir)


def _refuse_text_for_mlflow(name: str, value: MetricValue) -> None:
    if isinstance(value, str):
        raise InvalidInputError(
            "value",
            value,
            f"metric {name!r} is text, and in a job of the azureml-v2 backend metrics go through "
            "MLflow, which keeps numbers only",
            "log a number, or record the text with mlflow.set_tag(name, value)",
        )


def _azureml_context() -> object:
    global _azureml_run  # noqa: PLW0603  (one run context per process, as azureml-core has)
    with _state_lock:
        if _azureml_run is None:
            from mlboot._backends.azureml._in_run import run_context  # noqa: PLC0415  (on Azure ML)

            _azureml_run = run_context()
        return _azureml_run


def _say_dropped_once() -> None:
    global _said_dropped  # noqa: PLW0603  (say it once per process, not once per metric)
    with _state_lock:
        if _said_dropped:
            return
        _said_dropped = True
    logger.debug(
        "mlboot.log_metric: this process is not an Azure ML run (no AZUREML_RUN_ID and "
        "AZUREML_SERVICE_ENDPOINT) nor a local mlboot run (no %s); metrics are not recorded",
        RUN_DIR_VARIABLE,
    )
