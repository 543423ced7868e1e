"""Never executed: type-checked by mypy (every Python) to pin the public API's types down."""

from __future__ import annotations

from pathlib import Path

from typing_extensions import assert_type

import mlboot
from mlboot._azureml import AzureMLBackend
from mlboot.backend import Backend, Clock, ComputeInfo, WorkspaceRef
from mlboot.exceptions import MlbootError, WaitTimeoutError
from mlboot.testing import FakeBackend, FakeClock

# Both backends satisfy the Protocol: a Protocol is not checked by inheritance.
fake_backend: Backend = FakeBackend()
sdk_backend: Backend = AzureMLBackend()
fake_clock: Clock = FakeClock()

workspace = mlboot.workspace_from_config(Path("config.json"), backend=FakeBackend())
assert_type(workspace, mlboot.Workspace)
assert_type(workspace.ref, WorkspaceRef)
assert_type(workspace.location, str)
assert_type(workspace.to_azureml(), object)

mlboot.workspace_from_config("folder", auth=mlboot.AzureCliAuth())
mlboot.workspace_from_config(auth=mlboot.ServicePrincipalAuth("t", "c", "s"))
mlboot.workspace_from_config(auth=mlboot.ManagedIdentityAuth(client_id="x"))

info = FakeBackend().get_compute(workspace.ref, "cpu")
assert_type(info, ComputeInfo | None)

timeout_error: TimeoutError = WaitTimeoutError("x")
root: MlbootError = timeout_error  # type: ignore[assignment]  # TimeoutError is not an MlbootError
