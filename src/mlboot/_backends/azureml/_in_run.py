"""The in-run side of the azureml-core backend: the run a job's script logs its metrics to."""

from __future__ import annotations


def run_context() -> object:
    """azureml-core's ``Run.get_context()``: the run this process is, inside an Azure ML job."""
    from azureml.core import Run  # noqa: PLC0415  (only ever imported on Azure ML)

    return Run.get_context()
