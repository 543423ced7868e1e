"""mlboot: the Azure ML training workflow in three dependable, typed calls.

>>> import mlboot
>>> "workspace_from_config" in mlboot.__all__
True

Importing mlboot never imports azureml: the SDK is loaded the first time a call needs it.
"""

from __future__ import annotations

from mlboot import exceptions
from mlboot._auth import (
    AzureCliAuth,
    InteractiveAuth,
    ManagedIdentityAuth,
    Secret,
    ServicePrincipalAuth,
)
from mlboot._backend import Backend
from mlboot._workspace import Workspace, workspace_from_config

__all__ = [
    "AzureCliAuth",
    "Backend",
    "InteractiveAuth",
    "ManagedIdentityAuth",
    "Secret",
    "ServicePrincipalAuth",
    "Workspace",
    "exceptions",
    "workspace_from_config",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415  (only paid for when asked)

        return version("mlboot")
    raise AttributeError(f"module 'mlboot' has no attribute {name!r}")
