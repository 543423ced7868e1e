"""mlboot: the Azure ML training workflow in three dependable, typed calls.

>>> import mlboot
>>> "workspace_from_config" in mlboot.__all__
True

Importing mlboot never imports azureml: the SDK is loaded the first time a call needs it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mlboot import exceptions
from mlboot._auth import (
    AzureCliAuth,
    InteractiveAuth,
    ManagedIdentityAuth,
    Secret,
    ServicePrincipalAuth,
)
from mlboot._backend import Backend
from mlboot._compute import ComputeTarget, get_or_create_compute_target
from mlboot._distribution import Distribution, MpiDistribution, PyTorchDistribution
from mlboot._environment import Environment
from mlboot._run import Run, RunStatus, get_run
from mlboot._script_api import log_metric, log_metrics, output_dir
from mlboot._snapshot import SnapshotPlan, plan_snapshot
from mlboot._submit import submit_script
from mlboot._workspace import Workspace, workspace_from_config

if TYPE_CHECKING:
    from mlboot._local import LocalBackend

# A library prints nothing unless asked: without this, Python's last-resort handler would write
# mlboot's warnings to stderr in a program that never configured logging.
logging.getLogger("mlboot").addHandler(logging.NullHandler())

__all__ = [
    "AzureCliAuth",
    "Backend",
    "ComputeTarget",
    "Distribution",
    "Environment",
    "InteractiveAuth",
    "LocalBackend",
    "ManagedIdentityAuth",
    "MpiDistribution",
    "PyTorchDistribution",
    "Run",
    "RunStatus",
    "Secret",
    "ServicePrincipalAuth",
    "SnapshotPlan",
    "Workspace",
    "exceptions",
    "get_or_create_compute_target",
    "get_run",
    "log_metric",
    "log_metrics",
    "output_dir",
    "plan_snapshot",
    "submit_script",
    "workspace_from_config",
]


def __getattr__(name: str) -> Any:
    # Paid for only when asked: the version's metadata, and the local backend's process tooling.
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        return version("mlboot")
    if name == "LocalBackend":
        from mlboot._local import LocalBackend  # noqa: PLC0415

        return LocalBackend
    raise AttributeError(f"module 'mlboot' has no attribute {name!r}")
