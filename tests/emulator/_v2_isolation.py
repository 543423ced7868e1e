"""Point the real azure-ai-ml (and azureml-mlflow) at an emulator for one test, with no waits.

Call :func:`isolate_v2_sdk` after :func:`emulator.isolate_sdk` (the ``emulator`` fixture does
that one): the CA bundle, the blob host's name, ``HOME`` and the cleared variables are shared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._auth import make_unsigned_jwt

if TYPE_CHECKING:
    import pytest

    from ._emulator import Emulator

__all__ = [
    "V2_CLOUD_NAME",
    "StaticTokenCredential",
    "emulator_cloud",
    "isolate_v2_sdk",
    "v2_client_kwargs",
]

#: The cloud name the emulator stands in for: azure-ai-ml's and azureml-mlflow's default, so
#: neither of them looks any cloud up (azureml-mlflow fetches ARM metadata over the network for
#: a cloud name it does not know).
V2_CLOUD_NAME = "AzureCloud"

# Variables that would send azure-ai-ml, azure-identity or MLflow elsewhere.
_CLEARED_VARIABLES = (
    "ARM_CLOUD_METADATA_URL",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_RUN_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
)


@dataclass
class StaticTokenCredential:
    """An azure-core ``TokenCredential`` that hands out one fixed, unsigned JWT.

    ``scopes`` records what each ``get_token`` asked for (ARM's ``.default`` scope, Azure ML's,
    storage's ...). No prompt, no network, no cache.
    """

    token: str
    expires_on: int
    scopes: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def for_emulator(
        cls, emulator: Emulator, lifetime_seconds: int = 3600
    ) -> StaticTokenCredential:
        token = make_unsigned_jwt(
            tenant_id=emulator.tenant_id,
            object_id=emulator.object_id,
            lifetime_seconds=lifetime_seconds,
        )
        return cls(token=token, expires_on=int(time.time()) + lifetime_seconds)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:  # noqa: ARG002 - claims, tenant_id
        from azure.core.credentials import AccessToken  # noqa: PLC0415 - only where v2 is installed

        self.scopes.append(scopes)
        return AccessToken(self.token, self.expires_on)

    def close(self) -> None:
        pass


def emulator_cloud(emulator: Emulator) -> dict[str, str]:
    """azure-ai-ml's cloud entry (``_azure_environments._environments``) for the emulator."""
    return {
        "azure_portal": emulator.url + "/",
        "resource_manager": emulator.arm_url,
        "active_directory": emulator.url + "/",
        "aml_resource_id": emulator.url + "/",
        # https://{account}.blob.{storage_endpoint}: the port rides on the suffix.
        "storage_endpoint": f"{emulator.blob_suffix}:{emulator.port}",
        "registry_discovery_endpoint": emulator.url + "/",
    }


def v2_client_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``MLClient(...)`` in tests.

    ``polling_interval`` reaches every ARM service client's configuration (default 30 s): the
    LRO pollers of ``compute.begin_create_or_update`` and ``jobs.begin_cancel`` then poll at
    once instead of sleeping 30 s. ``show_progress=False`` silences the upload's tqdm bar on
    stderr; ``enable_telemetry=False`` keeps the App Insights handler off.
    """
    return {"polling_interval": 0, "show_progress": False, "enable_telemetry": False}


def isolate_v2_sdk(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    """Make this test's azure-ai-ml and azureml-mlflow talk to ``emulator`` only.

    * azure-ai-ml's ``AzureCloud`` entry is replaced (``monkeypatch.setitem``, undone after the
      test) by the emulator's endpoints, and ``AZUREML_CURRENT_CLOUD`` is ``AzureCloud``
      (``MLClient()`` writes that variable itself; ``monkeypatch`` restores it);
    * the run-history polling bounds ``jobs.stream`` sleeps by (``RunHistoryConstants``
      ``_WAIT_COMPLETION_POLLING_INTERVAL_MIN/MAX``, 2 s / 60 s, read from the environment at
      import and passed through ``int()``: the v1 knob's ``"0.05"`` would make it raise) are 0;
    * credential and MLflow variables are removed.
    """
    for name in _CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", V2_CLOUD_NAME)

    from azure.ai.ml import _azure_environments  # noqa: PLC0415 - only where v2 is installed
    from azure.ai.ml.operations._run_history_constants import (  # noqa: PLC0415
        RunHistoryConstants,
    )

    monkeypatch.setitem(
        _azure_environments._environments,
        V2_CLOUD_NAME,
        emulator_cloud(emulator),
    )
    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MIN", 0)
    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MAX", 0)
