"""The in-run side of the azureml-v2 backend: how a job's script logs its metrics (MLflow).

The backend sets :data:`TRACKING_VARIABLE` in every job it submits; ``mlboot.log_metric`` then
comes here, in the job's own process, and MLflow is imported then and only then (Azure ML sets
the job's ``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID``; azureml-mlflow signs the requests in).
"""

from __future__ import annotations

from typing import Any

from mlboot.exceptions import MissingExtraError

__all__ = ["TRACKING_VARIABLE", "log_metric"]

TRACKING_VARIABLE = "MLBOOT_TRACKING"
"""Set to ``"mlflow"`` by the azureml-v2 backend in each job: metrics go through MLflow there."""


def _mlflow() -> Any:
    try:
        import mlflow  # noqa: PLC0415  (only in a job of the azureml-v2 backend)
    except ImportError as exc:
        raise MissingExtraError(
            "mlboot.log_metric in a job of the azureml-v2 backend logs through MLflow, which "
            f"the job's environment does not have ({exc}). Fix: add mlflow-skinny and "
            "azureml-mlflow to the environment's requirements (or install mlboot[v2] there).",
            extra="v2",
        ) from exc
    return mlflow


def log_metric(name: str, value: float, step: int | None) -> None:
    """``mlflow.log_metric`` to the job's own run."""
    _mlflow().log_metric(name, value, step=step)
