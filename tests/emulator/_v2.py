"""The Azure ML SDK v2 (azure-ai-ml) routes of the emulator: see README.md, *SDK v2*.

azure-ai-ml reaches the workspace and its computes through the same ARM routes as azureml-core
(one service, one state: ``arm.workspace.get``, ``arm.compute.*``). What only v2 uses lives here:
ARM datastores, code and environment versions, jobs, the workspace-level run-history details
(logs) and MLflow's REST API (metrics). :class:`V2Routes` is mixed into
:class:`~emulator.Emulator`; every route is recorded in the emulator's request log like the v1
ones, and accepts any ``api-version`` (the SDK's drift between releases; the ones seen are in
``docs/dev/v2-on-emulator.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from werkzeug.wrappers import Response

from ._payloads import arm_error, json_response
from ._server import Router
from ._state import (
    PROVIDER,
    TERMINAL_RUN_STATES,
    DatastoreState,
    RunState,
    WorkspaceState,
    utc_now,
)

if TYPE_CHECKING:
    from ._emulator import _Call

__all__ = [
    "V2_JOB_STATUSES",
    "V2_TERMINAL_JOB_STATUSES",
    "CodeVersionState",
    "EnvironmentVersionState",
    "JobProgram",
    "JobState",
    "V2Routes",
]

_WS = (
    "/subscriptions/{subscription}/resourceGroups/{resource_group}"
    + PROVIDER
    + "/workspaces/{workspace}"
)
#: The REST JobStatus values (azure-ai-ml's ``JobStatus``).
V2_JOB_STATUSES = (
    "NotStarted",
    "Starting",
    "Provisioning",
    "Preparing",
    "Queued",
    "Running",
    "Finalizing",
    "CancelRequested",
    "Completed",
    "Failed",
    "Canceled",
    "NotResponding",
    "Paused",
    "Unknown",
)
#: Where the emulator stops moving a job on by itself (the service's ends).
V2_TERMINAL_JOB_STATUSES = TERMINAL_RUN_STATES
# MLflow's RunStatus for a job status (mlflow/protos/service.proto).
_MLFLOW_STATUS = {
    "Running": "RUNNING",
    "Finalizing": "RUNNING",
    "CancelRequested": "RUNNING",
    "Completed": "FINISHED",
    "Failed": "FAILED",
    "Canceled": "KILLED",
}
_USER_LOG = "user_logs/std_log.txt"
_LOG_CONTAINER = "azureml"
_ARTIFACT_STORE = "workspaceartifactstore"


@dataclass
class JobProgram:
    """What a submitted job will do: statuses per read, its logs and metrics."""

    status_sequence: list[str] = field(
        default_factory=lambda: ["NotStarted", "Starting", "Running", "Completed"]
    )
    logs: dict[str, str] = field(default_factory=dict)
    #: metric name -> values in the order logged (step = index)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    #: path under ``outputs/`` -> bytes, in the artifact store once the job has ended
    outputs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class JobState:
    """One v2 job as the emulator holds it.

    ``body``: the JSON the SDK PUT (its ``properties`` are echoed back); ``served_statuses``:
    what each read answered; ``puts``: every PUT body, in order (a re-PUT of a name updates).
    """

    name: str
    workspace: WorkspaceState
    body: dict[str, Any]
    program: JobProgram
    index: int = 0
    status_override: str | None = None
    cancel_requested: bool = False
    served_statuses: list[str] = field(default_factory=list)
    puts: list[dict[str, Any]] = field(default_factory=list)
    created_utc: str = field(default_factory=utc_now)
    start_time_utc: str | None = None
    end_time_utc: str | None = None
    experiment_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def properties(self) -> dict[str, Any]:
        properties = self.body.get("properties")
        return properties if isinstance(properties, dict) else {}

    @property
    def experiment_name(self) -> str:
        return str(self.properties.get("experimentName") or "Default")

    # The status machine of a v1 run (the n-th read sees the n-th status, CancelRequested then
    # Canceled, start and end stamped on the first started and terminal reads): v1's status
    # sets are v2's too (NotStarted ... Starting not started; Completed, Failed, Canceled ends).
    status = RunState.status
    read = RunState.read
    started = RunState.started


@dataclass
class AssetVersionState:
    """A version of a workspace asset (``codes``, ``environments``) as the SDK PUT it."""

    kind: str
    name: str
    version: str
    body: dict[str, Any]
    created_utc: str = field(default_factory=utc_now)

    @property
    def properties(self) -> dict[str, Any]:
        properties = self.body.get("properties")
        return properties if isinstance(properties, dict) else {}


class CodeVersionState(AssetVersionState):
    """A code version: ``code_uri`` names the uploaded folder in blob storage."""

    @property
    def code_uri(self) -> str:
        return str(self.properties.get("codeUri") or "")

    @property
    def hash_sha256(self) -> str | None:
        value = (self.properties.get("properties") or {}).get("hash_sha256")
        return str(value) if value else None


class EnvironmentVersionState(AssetVersionState):
    """An environment version (``properties.image``, ``condaFile``, ``build`` ...)."""


# What the service adds to each kind's properties when it answers.
_ASSET_DEFAULTS: dict[str, dict[str, Any]] = {
    "codes": {"isAnonymous": False, "isArchived": False},
    "environments": {
        "isAnonymous": False,
        "isArchived": False,
        "osType": "Linux",
        "environmentType": "UserCreated",
    },
    "data": {"isAnonymous": False, "isArchived": False},
}
_ASSET_CLASSES: dict[str, type[AssetVersionState]] = {
    "codes": CodeVersionState,
    "environments": EnvironmentVersionState,
    "data": AssetVersionState,
}


@dataclass
class _PendingUpload:
    name: str
    version: str
    container: str
    prefix: str  # "LocalUpload/<id>"


class V2Routes:
    """The v2 half of :class:`~emulator.Emulator` (a mixin: it shares the lock, the workspaces,
    the blob store and the request log of the v1 half)."""

    # Provided by Emulator (declared for readers and type checkers).
    _lock: threading.RLock
    _router: Router
    _blobs: dict[str, bytes]
    url: str
    port: int
    tenant_id: str
    object_id: str
    storage_account: str
    blob_host: str
    blob_suffix: str
    workspace: WorkspaceState
    _find_workspace: Callable[[Mapping[str, str]], WorkspaceState]
    add_datastore: Callable[..., Any]

    def _init_v2(self) -> None:
        self._job_programs: list[JobProgram] = []
        self._jobs: dict[tuple[str, str], JobState] = {}  # (workspace id, lower name)
        # (kind, workspace id, lower name, version) -> the version
        self._asset_versions: dict[tuple[str, str, str, str], AssetVersionState] = {}
        self._pending_uploads: list[_PendingUpload] = []
        self._blob_metadata: dict[str, dict[str, str]] = {}
        self._cancel_operations: dict[str, JobState] = {}

    # ---- programming -------------------------------------------------------------------------

    def program_job(
        self,
        status_sequence: Iterable[str] = ("NotStarted", "Starting", "Running", "Completed"),
        *,
        logs: str | Mapping[str, str] | None = None,
        metrics: Mapping[str, float | Iterable[float]] | None = None,
        error: str | Mapping[str, Any] | None = None,
        outputs: Mapping[str, bytes] | None = None,
    ) -> JobProgram:
        """Program the next job PUT of a new name (first in, first out).

        ``status_sequence``: the n-th read of the job (``GET .../jobs/{name}`` or run-history
        ``details``) sees the n-th status; the last one sticks. The PUT's answer shows the first
        status without using a read. ``logs``: text of ``user_logs/std_log.txt`` or path ->
        text, served once the job has started. ``metrics``: name -> value or values (MLflow
        steps 0, 1, ...). ``error``: a message or a service error object for a Failed job.
        ``outputs``: path under ``outputs/`` -> bytes, put in the ``workspaceartifactstore``
        datastore at ``ExperimentRun/dcid.<job>/outputs/`` by the first read that sees the job
        ended (where ``jobs.download`` finds a job's default output). The job's workspace gets
        that datastore (container ``azureml``, the logs' own; a SAS credential) with its first
        job, and a job's logs are there too once it has started.
        """
        program = _job_program(status_sequence, logs=logs, metrics=metrics, error=error)
        program.outputs = {
            path.removeprefix("outputs/"): bytes(data) for path, data in (outputs or {}).items()
        }
        with self._lock:
            self._job_programs.append(program)
        return program

    def add_job(
        self,
        name: str,
        status_sequence: Iterable[str] = ("Completed",),
        *,
        experiment_name: str = "Default",
        compute: str = "cpu-cluster",
        logs: str | Mapping[str, str] | None = None,
        metrics: Mapping[str, float | Iterable[float]] | None = None,
        error: str | Mapping[str, Any] | None = None,
        workspace: WorkspaceState | None = None,
    ) -> JobState:
        """A command job that exists already (``jobs.get`` of it reattaches)."""
        program = _job_program(status_sequence, logs=logs, metrics=metrics, error=error)
        with self._lock:
            workspace = workspace or self.workspace
            body = {
                "properties": {
                    "jobType": "Command",
                    "command": "python train.py",
                    "experimentName": experiment_name,
                    "computeId": f"{workspace.arm_id}/computes/{compute}",
                    "environmentId": "azureml://registries/azureml/environments/"
                    "sklearn-1.5/labels/latest",
                    "properties": {},
                    "tags": {},
                }
            }
            job = JobState(name=name, workspace=workspace, body=body, program=program)
            self._jobs[(workspace.workspace_id, name.lower())] = job
            self._ensure_artifact_store(workspace)
            return job

    def set_job_status(
        self, name: str, status: str, *, workspace: WorkspaceState | None = None
    ) -> None:
        """From the next read on, job ``name`` answers ``status`` (and keeps it)."""
        if status not in V2_JOB_STATUSES:
            raise ValueError(f"status {status!r}: one of {', '.join(V2_JOB_STATUSES)}")
        with self._lock:
            job = self.job(name, workspace=workspace)
            job.status_override = None
            job.program.status_sequence = [*job.program.status_sequence[: job.index], status]
            job.index = len(job.program.status_sequence) - 1

    def append_job_log(
        self,
        name: str,
        text: str,
        *,
        path: str = _USER_LOG,
        workspace: WorkspaceState | None = None,
    ) -> None:
        """Append ``text`` to a job's log ``path`` (served at once if the job has started)."""
        with self._lock:
            job = self.job(name, workspace=workspace)
            job.program.logs[path] = job.program.logs.get(path, "") + text
            if job.started:
                self._publish_job_logs(job)

    def add_job_metric(
        self, name: str, key: str, value: float, *, workspace: WorkspaceState | None = None
    ) -> None:
        """The job logs one more value of metric ``key`` (the next step)."""
        with self._lock:
            self.job(name, workspace=workspace).program.metrics.setdefault(key, []).append(
                float(value)
            )

    def add_data_asset(
        self,
        name: str,
        path: str,
        *,
        version: str = "1",
        data_type: str = "uri_folder",
        workspace: WorkspaceState | None = None,
    ) -> AssetVersionState:
        """Register version ``version`` of data asset ``name`` at ``path`` (an ``azureml://``
        URI), of type ``data_type`` (``uri_folder``, ``uri_file`` or ``mltable``)."""
        with self._lock:
            workspace = workspace or self.workspace
            body = {"properties": {"dataType": data_type, "dataUri": path, "properties": {}}}
            asset = AssetVersionState(kind="data", name=name, version=version, body=body)
            self._asset_versions[("data", workspace.workspace_id, name.lower(), version)] = asset
            return asset

    def _ensure_artifact_store(self, workspace: WorkspaceState) -> None:
        """Every workspace has ``workspaceartifactstore`` (container ``azureml``), where the
        service keeps each job's files; registered when the workspace's first job arrives."""
        if _ARTIFACT_STORE not in workspace.datastores:
            self.add_datastore(
                _ARTIFACT_STORE,
                container_name=_LOG_CONTAINER,
                credential_type="Sas",
                workspace=workspace,
            )

    # ---- observation -------------------------------------------------------------------------

    def job(self, name: str, *, workspace: WorkspaceState | None = None) -> JobState:
        """The emulator's state of job ``name`` (KeyError if there is none)."""
        with self._lock:
            return self._jobs[((workspace or self.workspace).workspace_id, name.lower())]

    @property
    def jobs(self) -> dict[str, JobState]:
        """Job name -> state, every workspace's (submitted and added jobs)."""
        with self._lock:
            return {job.name: job for job in self._jobs.values()}

    @property
    def code_versions(self) -> list[CodeVersionState]:
        """Code asset versions PUT so far, in order."""
        with self._lock:
            return [v for v in self._asset_versions.values() if isinstance(v, CodeVersionState)]

    def code_files(self, code: CodeVersionState) -> dict[str, bytes]:
        """Path (below the uploaded folder) -> content of what ``code.code_uri`` points at."""
        parts = unquote(urlsplit(code.code_uri).path).lstrip("/")
        with self._lock:
            return {
                key[len(parts) + 1 :]: content
                for key, content in sorted(self._blobs.items())
                if key.startswith(parts + "/")
            }

    @property
    def environment_versions(self) -> list[EnvironmentVersionState]:
        """Environment versions PUT so far, in order."""
        with self._lock:
            return [
                v for v in self._asset_versions.values() if isinstance(v, EnvironmentVersionState)
            ]

    def set_blob_metadata(self, key: str, metadata: dict[str, str]) -> None:
        """Set the metadata of blob ``container/name`` (e.g. a directory's ``hdi_isfolder``)."""
        with self._lock:
            self._blob_metadata[key] = dict(metadata)

    def blob_metadata(self, key: str) -> dict[str, str]:
        """The metadata (``x-ms-meta-*``) set on blob ``container/name``."""
        with self._lock:
            return dict(self._blob_metadata.get(key, {}))

    # ---- routes ------------------------------------------------------------------------------

    def _add_v2_routes(self) -> None:
        add = self._router.add
        add("v2.compute.list", "GET", _WS + "/computes", self._v2_compute_list)
        datastores = _WS + "/datastores"
        add("v2.datastore.list", "GET", datastores, self._v2_datastore_list)
        add("v2.datastore.get", "GET", datastores + "/{datastore}", self._v2_datastore_get)
        add(
            "v2.datastore.secrets",
            "POST",
            datastores + "/{datastore}/listSecrets",
            self._v2_datastore_secrets,
        )
        for kind, singular in (
            ("codes", "code"),
            ("environments", "environment"),
            ("data", "data"),
        ):
            container = _WS + f"/{kind}/{{name}}"
            versions = container + "/versions"
            for route, method, template, handler in (
                ("container.get", "GET", container, self._v2_asset_container_get),
                ("list", "GET", versions, self._v2_asset_list),
                ("get", "GET", versions + "/{version}", self._v2_asset_get),
                ("put", "PUT", versions + "/{version}", self._v2_asset_put),
            ):
                add(f"v2.{singular}.{route}", method, template, partial(handler, kind=kind))
        add(
            "v2.code.pending_upload",
            "POST",
            _WS + "/codes/{name}/versions/{version}/startPendingUpload",
            self._v2_code_pending_upload,
        )
        add("v2.job.list", "GET", _WS + "/jobs", self._v2_job_list)
        jobs = _WS + "/jobs/{job}"
        add("v2.job.put", "PUT", jobs, self._v2_job_put)
        add("v2.job.get", "GET", jobs, self._v2_job_get)
        add("v2.job.cancel", "POST", jobs + "/cancel", self._v2_job_cancel)
        add(
            "v2.job.cancel.operation",
            "GET",
            "/subscriptions/{subscription}"
            + PROVIDER
            + "/locations/{location}/mfeOperationResults/{operation}",
            self._v2_job_cancel_operation,
        )
        history = "/history/v1.0" + _WS
        add("v2.history.run.details", "GET", history + "/runs/{job}/details", self._v2_run_details)
        add("v2.history.rundata", "POST", history + "/rundata", self._v2_rundata)
        mlflow = "/mlflow/{mlflow_version}" + _WS + "/api/2.0/mlflow"
        add("v2.mlflow.run.get", "GET", mlflow + "/runs/get", self._v2_mlflow_run_get)
        add(
            "v2.mlflow.metric.history",
            "GET",
            mlflow + "/metrics/get-history",
            self._v2_mlflow_metric_history,
        )
        # Shared routes that v2 uses in ways v1 does not: wrapped, same names.
        self._wrap_route("arm.compute.put", self._v2_compute_put_precondition)
        self._wrap_route("blob.put", self._v2_blob_put_metadata)
        self._wrap_route("blob.head", self._v2_blob_head_metadata)

    def _wrap_route(
        self, name: str, wrapper: Callable[[_Call, Callable[[_Call], Response]], Response]
    ) -> None:
        routes = self._router.routes
        for index, route in enumerate(routes):
            if route.name == name:
                inner = route.handler

                def handler(call: _Call, inner: Callable[[_Call], Response] = inner) -> Response:
                    return wrapper(call, inner)

                routes[index] = dataclasses.replace(route, handler=handler)
                return
        raise RuntimeError(f"no route {name!r} to wrap")  # pragma: no cover - emulator bug

    # ---- helpers -----------------------------------------------------------------------------

    def _v2_blob_url(self, container: str, blob_name: str, *, sas: bool = True) -> str:
        url = f"https://{self.blob_host}:{self.port}/{container}/{quote(blob_name)}"
        if not sas:
            return url
        expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{url}?sv=2019-07-07&sr=c&sig=emulated&se={quote(expiry)}&sp=rcwl"

    def _arm_id(self, workspace: WorkspaceState, kind: str, *names: str) -> str:
        return "/".join([workspace.arm_id, kind, *names])

    @staticmethod
    def _system_data(created: str) -> dict[str, Any]:
        return {
            "createdAt": created,
            "createdBy": "Emulated User",
            "createdByType": "User",
            "lastModifiedAt": created,
        }

    # ---- ARM: computes and datastores ----------------------------------------------------

    def _v2_compute_list(self, call: _Call) -> Response:
        # The same documents as GET .../computes/{name} (one page).
        from ._payloads import compute_payload  # noqa: PLC0415 - keeps the v1 import list as is

        with self._lock:
            workspace = self._find_workspace(call.params)
            values = [
                compute_payload(
                    workspace, compute, tenant_id=self.tenant_id, object_id=self.object_id
                )
                for compute in workspace.computes.values()
            ]
            return json_response(200, {"value": values})

    def _v2_compute_put_precondition(
        self, call: _Call, inner: Callable[[_Call], Response]
    ) -> Response:
        # ARM's conditional create: "If-None-Match: *" fails when the resource exists. The SDK's
        # public begin_create_or_update never sends it (a plain upsert); a backend can, through
        # the generated operation's headers= keyword.
        if call.request.headers.get("If-None-Match") == "*":
            with self._lock:
                workspace = self._find_workspace(call.params)
                exists = call.params["compute"].lower() in workspace.computes
            if exists:
                return arm_error(
                    412,
                    "PreconditionFailed",
                    f"The compute '{call.params['compute']}' already exists "
                    "(If-None-Match: * asks for a create only).",
                )
        return inner(call)

    def _v2_datastore_json(self, workspace: WorkspaceState, datastore: DatastoreState) -> Any:
        credentials: dict[str, Any] = {"credentialsType": datastore.credential_type}
        return {
            "id": self._arm_id(workspace, "datastores", datastore.name),
            "name": datastore.name,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": datastore.account_name,
                "containerName": datastore.container_name,
                # The SDK builds https://{account}.blob.{endpoint}: the port rides on it.
                "endpoint": f"{self.blob_suffix}:{self.port}",
                "protocol": "https",
                "serviceDataAccessAuthIdentity": "None",
                "credentials": credentials,
                "isDefault": datastore.name.lower() == workspace.default_datastore.lower(),
                "description": None,
                "tags": dict(datastore.tags),
                "properties": {},
            },
            "systemData": self._system_data(utc_now()),
        }

    def _v2_find_datastore(self, call: _Call) -> tuple[WorkspaceState, DatastoreState]:
        from ._emulator import _HttpError  # noqa: PLC0415 - import cycle with the emulator

        workspace = self._find_workspace(call.params)
        name = call.params["datastore"]
        datastore = workspace.datastores.get(name.lower())
        if datastore is None:
            raise _HttpError(
                arm_error(
                    404,
                    "UserError",
                    f"DataStore {name} was not found in workspace {workspace.name}.",
                )
            )
        return workspace, datastore

    def _v2_datastore_list(self, call: _Call) -> Response:
        wanted_default = call.request.args.get("isDefault", "").lower() == "true"
        with self._lock:
            workspace = self._find_workspace(call.params)
            values = [
                self._v2_datastore_json(workspace, datastore)
                for datastore in workspace.datastores.values()
                if not wanted_default
                or datastore.name.lower() == workspace.default_datastore.lower()
            ]
            return json_response(200, {"value": values})

    def _v2_datastore_get(self, call: _Call) -> Response:
        with self._lock:
            workspace, datastore = self._v2_find_datastore(call)
            return json_response(200, self._v2_datastore_json(workspace, datastore))

    def _v2_datastore_secrets(self, call: _Call) -> Response:
        with self._lock:
            _, datastore = self._v2_find_datastore(call)
            if datastore.credential_type == "AccountKey":
                return json_response(
                    200, {"secretsType": "AccountKey", "key": datastore.account_key}
                )
            if datastore.credential_type == "Sas":
                return json_response(200, {"secretsType": "Sas", "sasToken": datastore.sas_token})
            return arm_error(
                400, "UserError", f"Datastore {datastore.name} has no credentials to list."
            )

    # ---- versioned assets: code and environments -------------------------------------

    def _asset_json(self, workspace: WorkspaceState, asset: AssetVersionState) -> dict[str, Any]:
        properties = {**_ASSET_DEFAULTS[asset.kind], **asset.properties}
        properties["provisioningState"] = "Succeeded"
        return {
            "id": self._arm_id(workspace, asset.kind, asset.name, "versions", asset.version),
            "name": asset.version,
            "type": f"Microsoft.MachineLearningServices/workspaces/{asset.kind}/versions",
            "properties": properties,
            "systemData": self._system_data(asset.created_utc),
        }

    def _asset_versions_of(
        self, kind: str, workspace: WorkspaceState, name: str | None
    ) -> list[AssetVersionState]:
        """The versions of asset ``name`` (every name's if None), oldest first."""
        return [
            asset
            for (asset_kind, ws_id, asset_name, _), asset in self._asset_versions.items()
            if asset_kind == kind
            and ws_id == workspace.workspace_id
            and (name is None or asset_name == name.lower())
        ]

    def _v2_asset_get(self, call: _Call, kind: str) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name, version = unquote(call.params["name"]), call.params["version"]
            asset = self._asset_versions.get((kind, workspace.workspace_id, name.lower(), version))
            if asset is None:
                return arm_error(404, "UserError", f"{kind} {name}:{version} was not found.")
            return json_response(200, self._asset_json(workspace, asset))

    def _v2_asset_put(self, call: _Call, kind: str) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name, version = unquote(call.params["name"]), call.params["version"]
            body = call.json() or {}
            properties = body.get("properties") or {}
            if kind == "environments" and not (properties.get("image") or properties.get("build")):
                return arm_error(
                    400, "UserError", "An environment needs an image or a build context."
                )
            key = (kind, workspace.workspace_id, name.lower(), version)
            existed = key in self._asset_versions
            asset = _ASSET_CLASSES[kind](kind=kind, name=name, version=version, body=body)
            self._asset_versions[key] = asset
            return json_response(200 if existed else 201, self._asset_json(workspace, asset))

    def _v2_asset_list(self, call: _Call, kind: str) -> Response:
        # Codes: "?hash=...&hashVersion=..." asks whether this folder's content exists already
        # (under any name: anonymous code is keyed by its hash). Newest first otherwise, as
        # "$orderBy=createdtime desc" asks.
        wanted = call.request.args.get("hash")
        with self._lock:
            workspace = self._find_workspace(call.params)
            if wanted:
                found = [
                    asset
                    for asset in self._asset_versions_of(kind, workspace, None)
                    if isinstance(asset, CodeVersionState) and asset.hash_sha256 == wanted
                ]
            else:
                found = self._asset_versions_of(kind, workspace, unquote(call.params["name"]))
            values = [self._asset_json(workspace, asset) for asset in reversed(found)]
            return json_response(200, {"value": values})

    def _v2_asset_container_get(self, call: _Call, kind: str) -> Response:
        # An unversioned create asks the container for its nextVersion (404: version "1").
        with self._lock:
            workspace = self._find_workspace(call.params)
            name = unquote(call.params["name"])
            versions = self._asset_versions_of(kind, workspace, name)
            if not versions:
                return arm_error(404, "UserError", f"{kind} {name} was not found.")
            numbers = [int(v.version) for v in versions if v.version.isdigit()]
            body = {
                "id": self._arm_id(workspace, kind, name),
                "name": name,
                "type": f"Microsoft.MachineLearningServices/workspaces/{kind}",
                "properties": {
                    "latestVersion": versions[-1].version,
                    "nextVersion": str(max(numbers, default=0) + 1),
                    "isArchived": False,
                    "provisioningState": "Succeeded",
                    "properties": {},
                    "tags": {},
                },
                "systemData": self._system_data(versions[0].created_utc),
            }
            return json_response(200, body)

    def _v2_code_pending_upload(self, call: _Call) -> Response:
        # A temporary blob folder in the default datastore's container, with a container SAS:
        # the SDK's ContainerClient.from_container_url takes the last path segment as the
        # "container", so its blobs land at <container>/LocalUpload/<id>/<folder>/<file>.
        with self._lock:
            workspace = self._find_workspace(call.params)
            datastore = workspace.datastores[workspace.default_datastore.lower()]
            prefix = f"LocalUpload/{uuid.uuid4().hex}"
            upload = _PendingUpload(
                name=call.params["name"],
                version=call.params["version"],
                container=datastore.container_name,
                prefix=prefix,
            )
            self._pending_uploads.append(upload)
            blob_uri = self._v2_blob_url(datastore.container_name, prefix, sas=False)
            body = {
                "pendingUploadId": uuid.uuid4().hex,
                "pendingUploadType": "TemporaryBlobReference",
                "blobReferenceForConsumption": {
                    "blobUri": blob_uri,
                    "storageAccountArmId": f"/subscriptions/{workspace.subscription_id}/"
                    f"resourceGroups/{workspace.resource_group}/providers/Microsoft.Storage/"
                    f"storageAccounts/{self.storage_account}",
                    "credential": {
                        "credentialType": "SAS",
                        "sasUri": self._v2_blob_url(datastore.container_name, prefix),
                    },
                },
            }
            return json_response(200, body)

    # ---- jobs ----------------------------------------------------------------------------

    def _v2_find_job(self, call: _Call) -> JobState:
        from ._emulator import _HttpError  # noqa: PLC0415 - import cycle with the emulator

        workspace = self._find_workspace(call.params)
        job = self._jobs.get((workspace.workspace_id, call.params["job"].lower()))
        if job is None:
            raise _HttpError(
                arm_error(
                    404,
                    "UserError",
                    f"The specified resource name ({call.params['job']}) was not found.",
                )
            )
        return job

    def _job_json(self, job: JobState, status: str) -> dict[str, Any]:
        workspace = job.workspace
        properties = dict(job.properties)
        properties["status"] = status
        properties.setdefault("experimentName", job.experiment_name)
        properties.setdefault("displayName", job.name)
        properties["services"] = {
            "Tracking": {
                "jobServiceType": "Tracking",
                "endpoint": f"azureml://{urlsplit(self.url).netloc}/mlflow/v1.0{workspace.arm_id}?",
            },
            "Studio": {
                "jobServiceType": "Studio",
                "endpoint": f"{self.url}/studio/runs/{job.name}?wsid={workspace.arm_id}",
            },
        }
        inner = dict(properties.get("properties") or {})
        inner.setdefault("_azureml.ComputeTargetType", "amlctrain")
        properties["properties"] = inner
        return {
            "id": self._arm_id(workspace, "jobs", job.name),
            "name": job.name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": properties,
            "systemData": self._system_data(job.created_utc),
        }

    def _v2_job_put(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name = call.params["job"]
            body = call.json() or {}
            properties = body.get("properties") or {}
            if properties.get("jobType") is None:
                return arm_error(400, "UserError", "properties.jobType is required.")
            key = (workspace.workspace_id, name.lower())
            job = self._jobs.get(key)
            if job is None:
                program = self._job_programs.pop(0) if self._job_programs else JobProgram()
                job = JobState(name=name, workspace=workspace, body=body, program=program)
                self._jobs[key] = job
                self._ensure_artifact_store(workspace)
                status = 201
            else:
                job.body = body  # an update of an existing job (tags, description)
                status = 200
            job.puts.append(body)
            return json_response(status, self._job_json(job, job.status))

    def _v2_job_list(self, call: _Call) -> Response:
        # Newest first, one page; each job as it is now (a listing does not move a job on).
        with self._lock:
            workspace = self._find_workspace(call.params)
            listed = [job for job in self._jobs.values() if job.workspace is workspace]
            values = [self._job_json(job, job.status) for job in reversed(listed)]
            return json_response(200, {"value": values, "nextLink": None})

    def _v2_job_get(self, call: _Call) -> Response:
        with self._lock:
            job = self._v2_find_job(call)
            status = job.read()
            self._publish_job_logs(job)
            self._publish_job_outputs(job, status)
            return json_response(200, self._job_json(job, status))

    def _v2_job_cancel(self, call: _Call) -> Response:
        # 202 + Location: the SDK's poller GETs the Location until it answers 200/204.
        with self._lock:
            job = self._v2_find_job(call)
            job.cancel_requested = True
            if job.status not in V2_TERMINAL_JOB_STATUSES:
                job.status_override = "CancelRequested"
            operation = uuid.uuid4().hex
            self._cancel_operations[operation] = job
            location = (
                f"{self.url}/subscriptions/{job.workspace.subscription_id}{PROVIDER}/locations/"
                f"{job.workspace.location}/mfeOperationResults/jc:{operation}"
                "?api-version=2023-04-01-preview"
            )
            return json_response(202, {}, {"Location": location})

    def _v2_job_cancel_operation(self, call: _Call) -> Response:
        with self._lock:
            operation = call.params["operation"].removeprefix("jc:")
            if operation not in self._cancel_operations:
                return arm_error(404, "NotFound", f"Operation {operation} was not found.")
            response = Response(status=204)
            response.headers["x-ms-request-id"] = str(uuid.uuid4())
            return response

    # ---- run history: details and logs ---------------------------------------------------

    def _publish_job_logs(self, job: JobState) -> dict[str, str]:
        """Put the started job's logs in blob storage; log path -> SAS URL."""
        urls: dict[str, str] = {}
        if not job.started:
            return urls
        for path, text in job.program.logs.items():
            blob_name = f"ExperimentRun/dcid.{job.name}/{path}"
            self._blobs[f"{_LOG_CONTAINER}/{blob_name}"] = text.encode("utf-8")
            urls[path] = self._v2_blob_url(_LOG_CONTAINER, blob_name)
        return urls

    def _publish_job_outputs(self, job: JobState, status: str) -> None:
        """Put an ended job's programmed outputs where ``jobs.download`` looks for them."""
        if status not in V2_TERMINAL_JOB_STATUSES:
            return
        for path, content in job.program.outputs.items():
            self._blobs[f"{_LOG_CONTAINER}/ExperimentRun/dcid.{job.name}/outputs/{path}"] = content

    def _v2_run_details(self, call: _Call) -> Response:
        with self._lock:
            job = self._v2_find_job(call)
            status = job.read()
            self._publish_job_outputs(job, status)
            log_files = self._publish_job_logs(job)
            error = None
            if status == "Failed":
                error = {
                    "error": job.program.error
                    or {"code": "UserError", "message": "The job failed.", "details": []}
                }
            properties = job.properties
            body = {
                "runId": job.name,
                "runUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, job.name)),
                "parentRunUuid": None,
                "rootRunUuid": None,
                "target": str(properties.get("computeId") or "").rsplit("/", 1)[-1] or None,
                "status": status,
                "parentRunId": None,
                "dataContainerId": f"dcid.{job.name}",
                "createdTimeUtc": job.created_utc,
                "startTimeUtc": job.start_time_utc,
                "endTimeUtc": job.end_time_utc,
                "error": error,
                "warnings": None,
                "tags": dict(properties.get("tags") or {}),
                "properties": dict(properties.get("properties") or {}),
                "parameters": {},
                "services": {},
                "inputDatasets": [],
                "outputDatasets": [],
                "runDefinition": None,
                "logFiles": log_files,
                "jobCost": None,
                "revision": len(job.served_statuses),
                "runTypeV2": {"orchestrator": None, "traits": [], "attribution": None},
                "settings": {},
                "computeRequest": None,
                "compute": None,
                "createdBy": {
                    "userObjectId": self.object_id,
                    "userTenantId": self.tenant_id,
                    "userName": "Emulated User",
                },
                "computeDuration": None,
                "effectiveSetupDuration": None,
            }
            return json_response(200, body)

    def _v2_rundata(self, call: _Call) -> Response:
        # POST .../rundata {"runId": name, "selectRunMetadata": true, ...}: the run's metadata.
        with self._lock:
            request = call.json() or {}
            params = dict(call.params, job=str(request.get("runId") or ""))
            job = self._v2_find_job(_with_params(call, params))
            return json_response(
                200,
                {
                    "runMetadata": {
                        "runId": job.name,
                        "status": job.status,
                        "startTimeUtc": job.start_time_utc,
                        "endTimeUtc": job.end_time_utc,
                        "experimentId": job.experiment_id,
                        "properties": dict(job.properties.get("properties") or {}),
                        "tags": dict(job.properties.get("tags") or {}),
                    },
                },
            )

    # ---- MLflow REST ---------------------------------------------------------------------

    def _v2_mlflow_job(self, call: _Call) -> JobState | Response:
        run_id = call.request.args.get("run_id") or call.request.args.get("run_uuid") or ""
        workspace = self._find_workspace(call.params)
        job = self._jobs.get((workspace.workspace_id, run_id.lower()))
        if job is None:
            return json_response(
                404,
                {
                    "error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": f"Run '{run_id}' not found",
                },
            )
        return job

    @staticmethod
    def _millis(stamp: str | None) -> int | None:
        if stamp is None:
            return None
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)

    def _metric_points(self, job: JobState, key: str) -> list[dict[str, Any]]:
        base = self._millis(job.start_time_utc or job.created_utc) or 0
        return [
            {"key": key, "value": value, "timestamp": base + step, "step": step}
            for step, value in enumerate(job.program.metrics.get(key, []))
        ]

    def _v2_mlflow_run_get(self, call: _Call) -> Response:
        with self._lock:
            job = self._v2_mlflow_job(call)
            if isinstance(job, Response):
                return job
            status = job.status
            metrics = [
                self._metric_points(job, key)[-1]
                for key, values in job.program.metrics.items()
                if values
            ]
            tags = [
                {"key": key, "value": str(value)}
                for key, value in (job.properties.get("tags") or {}).items()
            ]
            tags.append({"key": "mlflow.runName", "value": job.name})
            info = {
                "run_id": job.name,
                "run_uuid": job.name,
                "run_name": job.name,
                "experiment_id": job.experiment_id,
                "user_id": self.object_id,
                "status": _MLFLOW_STATUS.get(status, "SCHEDULED"),
                "start_time": self._millis(job.start_time_utc),
                "end_time": self._millis(job.end_time_utc),
                "artifact_uri": f"azureml://experiments/{job.experiment_name}/runs/{job.name}"
                "/artifacts",
                "lifecycle_stage": "active",
            }
            run = {
                "info": {k: v for k, v in info.items() if v is not None},
                "data": {"metrics": metrics, "params": [], "tags": tags},
                "inputs": {},
            }
            return json_response(200, {"run": run})

    def _v2_mlflow_metric_history(self, call: _Call) -> Response:
        with self._lock:
            job = self._v2_mlflow_job(call)
            if isinstance(job, Response):
                return job
            key = call.request.args.get("metric_key", "")
            # One page: MLflow's client stops when no next_page_token comes back.
            return json_response(200, {"metrics": self._metric_points(job, key)})

    # ---- blob storage: metadata ----------------------------------------------------------

    def _v2_blob_put_metadata(self, call: _Call, inner: Callable[[_Call], Response]) -> Response:
        # set_blob_metadata: PUT ?comp=metadata with x-ms-meta-* headers (the SDK marks an upload
        # complete on its first file, and reads the mark back to skip a second upload).
        if call.request.args.get("comp") != "metadata":
            return inner(call)
        key = f"{call.params['container']}/{call.params['blob_path']}"
        with self._lock:
            if key not in self._blobs:
                response = Response(status=404)
                response.headers["x-ms-error-code"] = "BlobNotFound"
                return response
            self._blob_metadata[key] = {
                name[len("x-ms-meta-") :].lower(): value
                for name, value in call.request.headers.items()
                if name.lower().startswith("x-ms-meta-")
            }
            content = self._blobs[key]
        response = Response(status=200)
        response.headers["ETag"] = f'"0x{hashlib.sha256(content).hexdigest()[:15].upper()}"'
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        response.headers["x-ms-version"] = "2019-07-07"
        response.headers["x-ms-request-server-encrypted"] = "true"
        response.headers["Content-Length"] = "0"
        return response

    def _v2_blob_head_metadata(self, call: _Call, inner: Callable[[_Call], Response]) -> Response:
        response = inner(call)
        key = f"{call.params['container']}/{call.params['blob_path']}"
        with self._lock:
            metadata = dict(self._blob_metadata.get(key, {}))
        for name, value in metadata.items():
            response.headers[f"x-ms-meta-{name}"] = value
        return response


def _with_params(call: _Call, params: dict[str, str]) -> _Call:
    from ._emulator import _Call  # noqa: PLC0415 - import cycle with the emulator

    return _Call(call.request, params, call.body)


def _job_program(
    status_sequence: Iterable[str],
    *,
    logs: str | Mapping[str, str] | None,
    metrics: Mapping[str, float | Iterable[float]] | None,
    error: str | Mapping[str, Any] | None,
) -> JobProgram:
    sequence = list(status_sequence)
    if not sequence:
        raise ValueError("status_sequence must not be empty")
    unknown = [s for s in sequence if s not in V2_JOB_STATUSES]
    if unknown:
        raise ValueError(f"unknown job statuses {unknown}: use {', '.join(V2_JOB_STATUSES)}")
    log_files = {_USER_LOG: logs} if isinstance(logs, str) else dict(logs or {})
    values: dict[str, list[float]] = {}
    for key, value in (metrics or {}).items():
        values[key] = (
            [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
        )
    if isinstance(error, str):
        error_object: dict[str, Any] | None = {
            "code": "UserError",
            "message": error,
            "details": [],
        }
    else:
        error_object = dict(error) if error else None
    return JobProgram(status_sequence=sequence, logs=log_files, metrics=values, error=error_object)
