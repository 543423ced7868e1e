"""mlboot: the Azure ML training workflow in three dependable, typed calls.

>>> import mlboot
>>> "workspace_from_config" in mlboot.__all__
True

Importing mlboot never imports azureml: the SDK is loaded the first time a call needs it.
"""

from __future__ import annotations

from mlboot import exceptions

# ``typing`` is not imported at run time: ``import mlboot`` is paid by every pytest start in a
# project that has mlboot installed (its pytest plugin), so it loads nothing but the exceptions.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlboot._auth import (
        AzureCliAuth,
        InteractiveAuth,
        ManagedIdentityAuth,
        Secret,
        ServicePrincipalAuth,
    )
    from mlboot._backends._seam import Backend
    from mlboot._backends.local._local import LocalBackend
    from mlboot._compute import ComputeTarget, get_or_create_compute_target
    from mlboot._data import Input, Output
    from mlboot._distribution import Distribution, MpiDistribution, PyTorchDistribution
    from mlboot._environment import Environment
    from mlboot._run import Run, RunStatus, get_run
    from mlboot._run_list import RunInfo, list_runs
    from mlboot._script_api import log_metric, log_metrics, output_dir
    from mlboot._snapshot import SnapshotPlan, plan_snapshot
    from mlboot._submit import submit_script
    from mlboot._workspace import Workspace, workspace_from_config

    __version__: str

__all__ = [
    "AzureCliAuth",
    "Backend",
    "ComputeTarget",
    "Distribution",
    "Environment",
    "Input",
    "InteractiveAuth",
    "LocalBackend",
    "ManagedIdentityAuth",
    "MpiDistribution",
    "Output",
    "PyTorchDistribution",
    "Run",
    "RunInfo",
    "RunStatus",
    "Secret",
    "ServicePrincipalAuth",
    "SnapshotPlan",
    "Workspace",
    "exceptions",
    "get_or_create_compute_target",
    "get_run",
    "list_runs",
    "log_metric",
    "log_metrics",
    "output_dir",
    "plan_snapshot",
    "submit_script",
    "workspace_from_config",
]

# Each public name and the private module that defines it, imported on first use (PEP 562).
_SOURCES = {
    "AzureCliAuth": "_auth",
    "Backend": "_backends._seam",
    "ComputeTarget": "_compute",
    "Distribution": "_distribution",
    "Environment": "_environment",
    "Input": "_data",
    "InteractiveAuth": "_auth",
    "LocalBackend": "_backends.local._local",
    "ManagedIdentityAuth": "_auth",
    "MpiDistribution": "_distribution",
    "Output": "_data",
    "PyTorchDistribution": "_distribution",
    "Run": "_run",
    "RunInfo": "_run_list",
    "RunStatus": "_run",
    "Secret": "_auth",
    "ServicePrincipalAuth": "_auth",
    "SnapshotPlan": "_snapshot",
    "Workspace": "_workspace",
    "get_or_create_compute_target": "_compute",
    "get_run": "_run",
    "list_runs": "_run_list",
    "log_metric": "_script_api",
    "log_metrics": "_script_api",
    "output_dir": "_script_api",
    "plan_snapshot": "_snapshot",
    "submit_script": "_submit",
    "workspace_from_config": "_workspace",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and must not see a catch-all

    def __getattr__(name: str) -> object:
        # The first use of a name imports its module (and attrs, logging...) and keeps the
        # value, so later lookups are plain attribute reads.  The version is read from the
        # installed metadata.
        if name == "__version__":
            from importlib.metadata import version  # noqa: PLC0415

            return version("mlboot")
        source = _SOURCES.get(name)
        if source is None:
            raise AttributeError(f"module 'mlboot' has no attribute {name!r}")
        from importlib import import_module  # noqa: PLC0415

        value = getattr(import_module(f"mlboot.{source}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


del TYPE_CHECKING
