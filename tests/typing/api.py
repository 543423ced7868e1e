"""Never executed: type-checked by mypy (every Python) to pin the public API's types down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from typing_extensions import assert_type

import mlboot
from mlboot._backends.azureml._azureml import AzureMLBackend
from mlboot.backend import AzureMLObjects, Backend, Clock, ComputeInfo, WorkspaceRef
from mlboot.exceptions import MlbootError, WaitTimeoutError
from mlboot.testing import FakeBackend, FakeClock

# Both backends satisfy the Protocol: a Protocol is not checked by inheritance.
fake_backend: Backend = FakeBackend()
sdk_backend: Backend = AzureMLBackend()
local_backend: Backend = mlboot.LocalBackend()
sdk_objects: AzureMLObjects = AzureMLBackend()  # the capability behind to_azureml()
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

cluster = mlboot.get_or_create_compute_target(
    workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4, on_mismatch="warn"
)
assert_type(cluster, mlboot.ComputeTarget)
assert_type(cluster.max_nodes, int)
assert_type(cluster.to_azureml(), object)

run = mlboot.submit_script(
    workspace,
    "train.py",
    compute=cluster,
    experiment="exp",
    arguments=["--lr", 0.1, 3, Path("data")],
    environment=mlboot.Environment.from_pip_requirements("requirements.txt"),
    distribution=mlboot.PyTorchDistribution(process_count_per_node=2),
    node_count=2,
    tags={"team": "ml"},
)
assert_type(run, mlboot.Run)
mlboot.submit_script(workspace, "train.py", compute="cpu-cluster", experiment="exp")
mlboot.submit_script(
    workspace,
    "train.py",
    compute="cpu-cluster",
    experiment="exp",
    arguments=["--data", mlboot.Input(Path("data")), "--out", mlboot.Output()],
    inputs={"images": mlboot.Input("azureml://datastores/ds/paths/images", mode="download")},
    outputs={"model": mlboot.Output("azureml://datastores/ds/paths/m/{run-id}", mode="mount")},
)
mlboot.Input("data", mode="copy")  # type: ignore[arg-type]  # only "mount" or "download"
mlboot.Output(mode="download")  # type: ignore[arg-type]  # only "upload" or "mount"
assert_type(mlboot.Input("data").kind, Literal["local", "datastore", "url", "dataset"])
assert_type(run.id, str)
assert_type(run.status(), mlboot.RunStatus)
assert_type(run.wait(timeout=60.0), mlboot.RunStatus)
assert_type(run.download_outputs("out"), list[Path])
assert_type(run.file_names(prefix="outputs/", timeout=30.0), list[str])
assert_type(run.download_files(Path("out"), prefix="logs/", timeout=None), list[Path])
assert_type(run.logs(), str)
assert_type(mlboot.get_run(workspace, "run-id"), mlboot.Run)
assert_type(mlboot.plan_snapshot(Path()), mlboot.SnapshotPlan)
assert_type(mlboot.plan_snapshot(Path()).files, tuple[str, ...])

timeout_error: TimeoutError = WaitTimeoutError("x")
root: MlbootError = timeout_error  # type: ignore[assignment]  # TimeoutError is not an MlbootError

# Every public name is typed: a misspelt one is an error, not Any (mypy checks that this ignore
# is needed, under warn_unused_ignores).
mlboot.workspace_from_json  # type: ignore[attr-defined]  # noqa: B018
assert_type(mlboot.__version__, str)
