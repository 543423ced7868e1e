"""A stateful emulator of the ARM and Azure ML v1 data-plane calls that azureml-core makes."""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from typing_extensions import Self
from werkzeug.wrappers import Request, Response

from ._auth import EmulatorAuth
from ._payloads import (
    arm_error,
    compute_payload,
    dataset_dto,
    datastore_dto,
    experiment_dto,
    json_response,
    metric_v2,
    run_details_dto,
    run_dto,
    service_error,
    workspace_payload,
)
from ._server import (
    Fault,
    RecordedRequest,
    Router,
    ServerThread,
    host_without_port,
    normalize_path,
    parse_query,
)
from ._state import (
    PROVIDER,
    TERMINAL_OPERATION_STATES,
    TERMINAL_RUN_STATES,
    ComputeState,
    DatasetState,
    DatastoreState,
    ExperimentState,
    OperationState,
    ProvisioningProgram,
    RunData,
    RunProgram,
    RunState,
    SnapshotState,
    WorkspaceState,
    parse_iso_duration,
    utc_now,
)
from ._tls import EmulatorTLS
from ._v2 import V2Routes

__all__ = ["Emulator"]

_WS = (
    "/subscriptions/{subscription}/resourceGroups/{resource_group}"
    + PROVIDER
    + "/workspaces/{workspace}"
)
_HISTORY = "/history/v1.0" + _WS
_ARTIFACTS = "/artifact/v2.0" + _WS + "/artifacts"
_RUN_ORIGIN = "ExperimentRun"
# The service's rule for new compute names (Azure ML docs for clusters).
_COMPUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
# Datastore names: letters, digits and '_' (azureml-core lower-cases capitals with a warning).
_DATASTORE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
# The account key every AccountKey datastore hands out (base64, as the SDK's signer needs).
_ACCOUNT_KEY = base64.b64encode(b"emulated-storage-account-key").decode("ascii")


def _filter_value(body: object, field: str) -> str | None:
    """The value an OData ``filter`` in a query body asks of ``field``.

    The SDK writes ``"name eq 'x'"`` for experiments and ``"(Status eq Failed) and ..."`` (no
    quotes) for runs.
    """
    text = body.get("filter") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return None
    found = re.search(rf"(?i)\b{re.escape(field)}\s+eq\s+(?:'((?:[^']|'')*)'|([^\s()]+))", text)
    if found is None:
        return None
    if found.group(1) is not None:
        return found.group(1).replace("''", "'")
    return None if found.group(2) == "null" else found.group(2)


def _experiment_not_found(call: _Call) -> Response:
    name = call.params["experiment"]
    return service_error(404, "UserError", f"Experiment {name} not found.", inner="NotFound")


class _HttpError(Exception):
    """Raised by a handler to answer with ``response`` (e.g. a 404 for a missing workspace)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class _Call:
    """What a route handler gets: the request, its path parameters and its body."""

    def __init__(self, request: Request, params: dict[str, str], body: bytes) -> None:
        self.request = request
        self.params = params
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


class Emulator(V2Routes):
    """An Azure ML (SDK v1) service emulator on 127.0.0.1, over HTTPS, for one test.

    ARM, discovery, the compute RP, run history, execution, content (snapshots), artifacts,
    metrics and blob storage are all served by one threaded werkzeug server on a free port.
    Program it (:meth:`add_workspace`, :meth:`add_compute`, :meth:`program_provisioning`,
    :meth:`program_run`, :meth:`add_run`), break it (:meth:`fail`, :meth:`reset_connection`,
    :meth:`delay`), and read what the SDK did (:attr:`requests`, :meth:`count`,
    :attr:`snapshots`, :meth:`run`).

    The process must trust :attr:`ca_bundle` and resolve :attr:`blob_host` to 127.0.0.1;
    :func:`emulator.isolate_sdk` arranges both (and short SDK waits) for one pytest test. Hand
    :attr:`auth` to ``Workspace(...)``. An emulator is started once and stopped once.
    """

    def __init__(
        self,
        directory: Path,
        *,
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
        default_location: str = "westeurope",
        storage_account: str = "emustore",
        blob_suffix: str = "emulator.localhost",
        time_limit: float = 120.0,
    ) -> None:
        """``directory`` receives the throwaway CA (``emulator-ca.pem``).

        ``time_limit``: seconds after :meth:`start` past which every request is answered
        ``410 EmulatorTimeLimitReached``, so that no SDK wait can poll forever.
        """
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tenant_id = tenant_id
        self.object_id = str(uuid.uuid4())
        self.default_location = default_location
        self.storage_account = storage_account
        self.blob_suffix = blob_suffix
        self.blob_host = f"{storage_account}.blob.{blob_suffix}"
        self.time_limit = time_limit
        #: The bodies of the experiment and run queries (Experiment.list, Run.list) the SDK sent.
        self.query_bodies: list[dict[str, Any]] = []
        #: Tracebacks of emulator handlers that raised (answered 500): a bug in the emulator.
        self.handler_errors: list[str] = []
        #: Set by a test that sends unknown requests on purpose (the pytest fixture checks).
        self.unknown_requests_expected = False

        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._started_at: float | None = None
        self._sequence = itertools.count()
        self._log: list[tuple[int, RecordedRequest]] = []
        self._faults: list[Fault] = []
        self._subscriptions: dict[str, str] = {}
        self._workspaces: dict[tuple[str, str, str], WorkspaceState] = {}
        self._default_workspace: WorkspaceState | None = None
        self._provisioning: dict[str, ProvisioningProgram] = {}
        self._operations: dict[str, OperationState] = {}
        self._run_programs: list[RunProgram] = []
        self._runs: dict[str, RunState] = {}
        self._run_numbers = itertools.count(1)
        self._snapshots: dict[str, SnapshotState] = {}
        self._blobs: dict[str, bytes] = {}  # "container/blob name" -> content
        self._upload_names: dict[str, str] = {}  # snapshot blob key -> file path it stands for

        self._router = Router()
        self._add_routes()
        self._init_v2()
        self._add_v2_routes()  # azure-ai-ml's routes (tests/emulator/_v2.py)
        self._tls = EmulatorTLS(self.directory, [self.blob_host])
        self._server: ServerThread | None = None
        self._auth: Any = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("an Emulator is started once")
        self._server = ServerThread(self._wsgi, self, self._tls.server_context())
        self._started_at = _monotonic()
        self._server.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open connections, join the server thread (at most ``timeout`` s)."""
        self._stopping.set()  # also cuts short any delay() fault being served
        if self._server is not None:
            self._server.stop(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def expired(self) -> bool:
        """True once ``time_limit`` seconds have passed since :meth:`start`."""
        return self._started_at is not None and _monotonic() - self._started_at > self.time_limit

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("start() the emulator first")
        return self._server.port

    @property
    def url(self) -> str:
        """Base URL of every emulated service, e.g. ``https://127.0.0.1:40123``."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def arm_url(self) -> str:
        """The ARM endpoint, with the trailing slash the real AzureCloud value has."""
        return self.url + "/"

    @property
    def discovery_url(self) -> str:
        """What workspaces give as ``properties.discoveryUrl``."""
        return self.url + "/discovery"

    @property
    def ca_bundle(self) -> Path:
        """PEM file of the throwaway CA that signed the emulator's certificate."""
        return self._tls.ca_bundle

    @property
    def host_names(self) -> list[str]:
        """Names (besides 127.0.0.1) that must resolve to 127.0.0.1 in the test process."""
        return [self.blob_host]

    @property
    def auth(self) -> Any:
        """An :class:`~emulator.EmulatorAuth` that sends the SDK to this emulator only."""
        if self._auth is None:
            self._auth = EmulatorAuth(
                resource_manager_url=self.arm_url,
                tenant_id=self.tenant_id,
                object_id=self.object_id,
                subscriptions=self._subscriptions,  # shared: later workspaces are seen too
            )
        return self._auth

    # ---- programming: workspaces and computes -----------------------------------------------

    def add_workspace(
        self,
        name: str = "emulated-ws",
        *,
        resource_group: str = "emulated-rg",
        subscription_id: str = "00000000-0000-4000-8000-000000000001",
        location: str | None = None,
    ) -> WorkspaceState:
        """Create a workspace (its subscription becomes visible to :attr:`auth`).

        The first workspace added is the default one (:attr:`workspace`).
        """
        with self._lock:
            workspace = WorkspaceState(
                subscription_id=subscription_id,
                resource_group=resource_group,
                name=name,
                location=location or self.default_location,
            )
            self._workspaces[workspace.key()] = workspace
            # Every workspace has its blob datastore, the default one, as the service creates it.
            self._put_datastore(
                workspace,
                DatastoreState(
                    name="workspaceblobstore",
                    container_name=f"azureml-blobstore-{workspace.workspace_id}",
                    account_name=self.storage_account,
                    account_key=_ACCOUNT_KEY,
                ),
            )
            self._subscriptions.setdefault(
                subscription_id, f"Emulated subscription {len(self._subscriptions) + 1}"
            )
            if self._default_workspace is None:
                self._default_workspace = workspace
            return workspace

    @property
    def workspace(self) -> WorkspaceState:
        """The default workspace (the first one added)."""
        if self._default_workspace is None:
            raise RuntimeError("add_workspace() first")
        return self._default_workspace

    def add_subscription(self, subscription_id: str, name: str = "Emulated subscription") -> None:
        """Make a subscription visible to :attr:`auth` without any workspace in it."""
        with self._lock:
            self._subscriptions[subscription_id] = name

    def add_compute(
        self,
        name: str,
        kind: str = "AmlCompute",
        *,
        vm_size: str = "STANDARD_DS3_V2",
        vm_priority: str = "Dedicated",
        min_nodes: int = 0,
        max_nodes: int = 4,
        idle_seconds_before_scaledown: int = 1800,
        provisioning_state: str = "Succeeded",
        provisioning_errors: list[dict[str, Any]] | None = None,
        current_node_count: int = 0,
        subnet_id: str | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        workspace: WorkspaceState | None = None,
    ) -> ComputeState:
        """Add an existing compute target; ``kind`` is ``AmlCompute`` or ``ComputeInstance``."""
        with self._lock:
            workspace = workspace or self.workspace
            compute = ComputeState(
                name=name,
                kind=kind,
                vm_size=vm_size,
                vm_priority=vm_priority,
                min_nodes=min_nodes,
                max_nodes=max_nodes,
                idle_seconds=idle_seconds_before_scaledown,
                provisioning_state=provisioning_state,
                provisioning_errors=provisioning_errors,
                current_node_count=current_node_count,
                subnet_id=subnet_id,
                location=workspace.location,
                tags=tags,
                description=description,
            )
            workspace.computes[name.lower()] = compute
            return compute

    def add_environment(
        self,
        name: str,
        version: str,
        definition: Mapping[str, Any],
        *,
        workspace: WorkspaceState | None = None,
    ) -> None:
        """Register version ``version`` of environment ``name`` as the service would return it.

        ``definition`` is the environment's JSON (e.g. ``Environment._serialize_to_dict`` of an
        SDK environment); ``name`` and ``version`` are set in it.
        """
        with self._lock:
            workspace = workspace or self.workspace
            stored = {**definition, "name": name, "version": version}
            workspace.environments.setdefault(name, {})[version] = stored

    # ---- programming: datastores -----------------------------------------------------------

    def add_datastore(
        self,
        name: str,
        *,
        container_name: str | None = None,
        credential_type: str = "AccountKey",
        default: bool = False,
        tags: Mapping[str, str] | None = None,
        workspace: WorkspaceState | None = None,
    ) -> DatastoreState:
        """Register an Azure Blob datastore ``name``: a container of the emulator's account.

        ``credential_type``: ``AccountKey`` (blob requests signed with ``SharedKey``), ``Sas``
        (a SAS token appended to each blob URL) or ``None`` (no credential, so the SDK refuses to
        upload or download through it, as with a real credential-less datastore).
        ``default=True`` makes it what ``GET .../default`` answers. Replaces one of that name.
        """
        if not _DATASTORE_NAME.match(name):
            raise ValueError(
                f"datastore name {name!r}: 1 to 255 lower-case letters, digits and '_'"
            )
        if credential_type not in ("AccountKey", "Sas", "None"):
            raise ValueError(f"credential_type {credential_type!r}: AccountKey, Sas or None")
        with self._lock:
            workspace = workspace or self.workspace
            datastore = DatastoreState(
                name=name,
                container_name=container_name or name.replace("_", "-"),
                account_name=self.storage_account,
                credential_type=credential_type,
                account_key=_ACCOUNT_KEY if credential_type == "AccountKey" else None,
                sas_token="sv=2019-07-07&ss=b&srt=sco&sp=rwdlac&sig=emulated"
                if credential_type == "Sas"
                else None,
                tags=dict(tags or {}),
            )
            self._put_datastore(workspace, datastore)
            if default:
                workspace.default_datastore = name
            return datastore

    @staticmethod
    def _put_datastore(workspace: WorkspaceState, datastore: DatastoreState) -> None:
        workspace.datastores[datastore.name.lower()] = datastore

    def datastore(self, name: str, *, workspace: WorkspaceState | None = None) -> DatastoreState:
        """The emulator's state of datastore ``name`` (KeyError if there is none)."""
        with self._lock:
            return (workspace or self.workspace).datastores[name.lower()]

    def datastore_files(
        self, name: str, prefix: str = "", *, workspace: WorkspaceState | None = None
    ) -> dict[str, bytes]:
        """Path (inside the datastore) -> content of its blobs whose path starts with ``prefix``."""
        with self._lock:
            container = self.datastore(name, workspace=workspace).container_name + "/"
            return {
                key[len(container) :]: content
                for key, content in sorted(self._blobs.items())
                if key.startswith(container) and key[len(container) :].startswith(prefix)
            }

    def put_datastore_file(
        self, name: str, path: str, content: bytes, *, workspace: WorkspaceState | None = None
    ) -> None:
        """Put a blob at ``path`` in datastore ``name`` (data that exists before the test)."""
        with self._lock:
            container = self.datastore(name, workspace=workspace).container_name
            self._blobs[f"{container}/{path.lstrip('/')}"] = bytes(content)

    def add_dataset(
        self,
        name: str,
        datastore: str = "workspaceblobstore",
        path: str = "",
        *,
        version: int | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        workspace: WorkspaceState | None = None,
    ) -> DatasetState:
        """Register a version of file dataset ``name``: the files at ``path`` in ``datastore``.

        ``version`` defaults to one more than the latest (1 for a new name); the highest version
        is what ``@latest`` (``Dataset.get_by_name(ws, name)``) answers.
        """
        with self._lock:
            workspace = workspace or self.workspace
            if datastore.lower() not in workspace.datastores:
                raise ValueError(f"no datastore {datastore!r}: add_datastore() it first")
            versions = workspace.datasets.setdefault(name, {})
            existing = next(iter(versions.values()), None)
            dataset = DatasetState(
                name=name,
                version=version if version is not None else max(versions, default=0) + 1,
                datastore=datastore,
                path=path,
                description=description,
                tags=dict(tags or {}),
            )
            if existing is not None:
                dataset.registered_id = existing.registered_id
            versions[dataset.version] = dataset
            return dataset

    def compute(self, name: str, *, workspace: WorkspaceState | None = None) -> ComputeState:
        """The emulator's state of compute ``name`` (KeyError if there is none)."""
        with self._lock:
            return (workspace or self.workspace).computes[name.lower()]

    def program_provisioning(
        self,
        name: str,
        states: Iterable[str] = ("Creating", "Succeeded"),
        errors: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Program the next create (PUT) or scale update (PATCH) of compute ``name``.

        The compute shows ``states[0]`` right after the PUT/PATCH; every poll of the async
        operation moves one step on and reports ``InProgress`` until a terminal state
        (``Succeeded``, ``Failed``, ``Canceled``). ``errors`` (service error objects such as
        :func:`~emulator.quota_error`) become the compute's ``provisioningErrors`` and the
        operation's ``error`` when it ends ``Failed``. Unprogrammed: Creating (Updating for a
        PATCH) then Succeeded.

        ``ComputeTarget.wait_for_completion`` sleeps a hard-coded 5 s after each ``InProgress``
        poll: every state between the first and the terminal one costs 5 s of test time.
        """
        states = list(states)
        if not states:
            raise ValueError("states must not be empty")
        with self._lock:
            self._provisioning[name.lower()] = ProvisioningProgram(
                states, [dict(e) for e in errors]
            )

    # ---- programming: runs -------------------------------------------------------------------

    def program_run(
        self,
        status_sequence: Iterable[str] = ("Queued", "Running", "Finalizing", "Completed"),
        *,
        logs: str | Mapping[str, str] | None = None,
        metrics: Mapping[str, Any] | None = None,
        outputs: Mapping[str, bytes] | None = None,
        error: str | Mapping[str, Any] | None = None,
        warnings: Iterable[str] = (),
    ) -> RunProgram:
        """Program the next submitted run (programs are used first in, first out).

        ``status_sequence``: the n-th read of the run (``GET .../runs/{id}`` or
        ``.../details``) sees the n-th status; the last one sticks. Repeat a status to make it
        last for more reads.
        ``logs``: text of ``azureml-logs/70_driver_log.txt``, or log path -> text
        (``user_logs/...`` and ``system_logs/...`` are listed through the artifact service,
        others through run details); logs appear once the run has started.
        ``metrics``: name -> scalar, list of scalars, or dict of columns (a table).
        ``outputs``: path (under ``outputs/`` unless given) -> bytes; they appear once the run is
        Finalizing or terminal.
        ``error``: a message or a service error object for a Failed run.
        A run submitted with no program left gets the default: Queued, Running, Finalizing,
        Completed.
        """
        program = _make_program(
            status_sequence,
            logs=logs,
            metrics=metrics,
            outputs=outputs,
            error=error,
            warnings=warnings,
        )
        with self._lock:
            self._run_programs.append(program)
        return program

    def add_run(
        self,
        experiment_name: str,
        status_sequence: Iterable[str] = ("Completed",),
        *,
        run_id: str | None = None,
        compute_target: str | None = "cpu-cluster",
        logs: str | Mapping[str, str] | None = None,
        metrics: Mapping[str, Any] | None = None,
        outputs: Mapping[str, bytes] | None = None,
        error: str | Mapping[str, Any] | None = None,
        workspace: WorkspaceState | None = None,
    ) -> RunState:
        """Add a run that exists already (to reattach to it by id), in a (new) experiment."""
        program = _make_program(
            status_sequence, logs=logs, metrics=metrics, outputs=outputs, error=error, warnings=()
        )
        with self._lock:
            experiment = self._experiment(workspace or self.workspace, experiment_name, create=True)
            assert experiment is not None
            run = self._new_run(experiment, program, run_id=run_id)
            run.compute_target = compute_target
            return run

    def append_log(
        self, run_id: str, text: str, *, path: str = "azureml-logs/70_driver_log.txt"
    ) -> None:
        """Append ``text`` to a run's log ``path``, as the running script writes it.

        Like the service's log blob, the log's URL serves what has been written so far: once
        the run has started, the next download of it sees ``text`` at once.
        """
        with self._lock:
            run = self._runs[run_id]
            run.program.logs[path] = run.program.logs.get(path, "") + text
            if run.started:
                self._publish_artifacts(run)

    def set_run_status(self, run_id: str, status: str) -> None:
        """From the next read on, the run answers ``status`` (and keeps it): time-based ends."""
        with self._lock:
            run = self._runs[run_id]
            run.program.status_sequence = [*run.program.status_sequence[: run.index], status]

    # ---- programming: faults -----------------------------------------------------------------

    def fail(
        self,
        route: str,
        status: int = 503,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        body: Any = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests of ``route`` with HTTP ``status``, then normally.

        ``retry_after`` adds a ``Retry-After`` header; ``body`` (JSON-able, str or bytes)
        replaces the default ARM-style error body; ``method`` narrows the fault to one method.
        """
        self._add_fault(
            Fault(
                route=route,
                kind="status",
                times=times,
                status=status,
                retry_after=None if retry_after is None else _retry_after_text(retry_after),
                body=body,
                method=method,
            )
        )

    def reset_connection(self, route: str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``route`` with a TCP reset and no HTTP answer."""
        self._add_fault(Fault(route=route, kind="reset", times=times))

    def delay(self, route: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next ``times`` answers of ``route`` for ``seconds`` (:meth:`stop` cuts it)."""
        self._add_fault(Fault(route=route, kind="delay", times=times, delay=seconds))

    def _add_fault(self, fault: Fault) -> None:
        if fault.route not in self._router.names:
            known = ", ".join(sorted(self._router.names))
            raise ValueError(f"unknown route {fault.route!r}; known routes: {known}")
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(fault)

    @property
    def route_names(self) -> list[str]:
        """Every route name the emulator serves (what :meth:`fail` and :meth:`count` take)."""
        return sorted(self._router.names)

    # ---- observation -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return [record for _, record in sorted(self._log, key=lambda item: item[0])]

    def requests_to(self, route: str, *, method: str | None = None) -> list[RecordedRequest]:
        """The requests one route received, in arrival order (faulted ones included)."""
        return [
            r for r in self.requests if r.route == route and (method is None or r.method == method)
        ]

    def count(self, route: str, *, method: str | None = None) -> int:
        """How many requests ``route`` received (faulted ones included)."""
        return len(self.requests_to(route, method=method))

    def statuses(self, route: str) -> list[int | None]:
        """HTTP statuses ``route`` answered, in order (None: connection reset)."""
        return [r.status for r in self.requests_to(route)]

    def route_sequence(self, *, include_blob: bool = True) -> list[str]:
        """The route names of all requests, in arrival order."""
        return [r.route for r in self.requests if include_blob or not r.is_blob]

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        """Requests no route matched (answered 404 NoRouteInEmulator)."""
        return self.requests_to("unknown")

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def snapshots(self) -> dict[str, SnapshotState]:
        """Snapshot id -> what was committed and uploaded for it."""
        with self._lock:
            return dict(self._snapshots)

    @property
    def runs(self) -> dict[str, RunState]:
        """Run id -> run state (submitted and added runs)."""
        with self._lock:
            return dict(self._runs)

    def run(self, run_id: str) -> RunState:
        with self._lock:
            return self._runs[run_id]

    def submitted_run_definition(self, run_id: str | None = None) -> dict[str, Any]:
        """The body the SDK posted to ``snapshotrun`` for ``run_id`` (default: the last run
        submitted); LookupError when no such run was submitted."""
        with self._lock:
            if run_id is None:
                submitted = [r for r in self._runs.values() if r.definition is not None]
                if not submitted:
                    raise LookupError("no run has been submitted to the emulator")
                run = max(submitted, key=lambda r: r.run_number)
            else:
                run = self._runs[run_id]
            if run.definition is None:
                raise LookupError(f"run {run.run_id} was added, not submitted: no definition")
            return copy.deepcopy(run.definition)

    def run_data(self, run_id: str | None = None) -> RunData:
        """The inputs, outputs and arguments of a submitted run's definition, parsed
        (``dataReferences``, ``data``, ``outputData``): what the compute would mount,
        download and upload."""
        return RunData.from_definition(self.submitted_run_definition(run_id))

    # ---- request handling ----------------------------------------------------------------

    def _is_blob_host(self, host: str) -> bool:
        return host_without_port(host).lower() == self.blob_host.lower()

    def _take_fault(self, route: str, method: str, kind: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.route != route or fault.kind != kind:
                    continue
                if fault.method is not None and fault.method.upper() != method.upper():
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _record(self, sequence: int, record: RecordedRequest) -> None:
        with self._lock:
            self._log.append((sequence, record))

    def take_reset_fault(
        self, method: str, raw_path: str, host: str, headers: dict[str, str]
    ) -> bool:
        """Called by the request handler before WSGI: True to reset this connection."""
        sequence = next(self._sequence)
        path, _, query = raw_path.partition("?")
        path = unquote(path)
        route, params = self._router.match(method, path, blob=self._is_blob_host(host))
        name = route.name if route else "unknown"
        if self._take_fault(name, method, "reset") is None:
            return False
        self._record(
            sequence,
            RecordedRequest(
                route=name,
                method=method,
                host=host,
                path=normalize_path(path),
                query=parse_query(query),
                headers=headers,
                body_size=int(headers.get("Content-Length") or 0),
                status=None,
                fault="reset",
                params=params,
                started=_monotonic(),
            ),
        )
        return True

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sequence = next(self._sequence)
        started = _monotonic()
        request = Request(environ)
        route, params = self._router.match(
            request.method, request.path, blob=self._is_blob_host(request.host)
        )
        name = route.name if route else "unknown"
        body = request.get_data(cache=True)
        delay = self._take_fault(name, request.method, "delay")
        fault = self._take_fault(name, request.method, "status")
        if delay is not None:
            self._stopping.wait(delay.delay)
        if self.expired:
            response = arm_error(
                410,
                "EmulatorTimeLimitReached",
                f"The emulator's time limit ({self.time_limit} s) has passed: "
                "it answers nothing any more.",
            )
        elif fault is not None:
            response = _fault_response(fault)
        elif route is not None and (refusal := self._refuse_credentials(name, request)) is not None:
            response = refusal
        elif route is None:
            response = arm_error(
                404,
                "NoRouteInEmulator",
                f"The emulator has no route for {request.method} {request.path}",
            )
        else:
            try:
                response = route.handler(_Call(request, params, body))
            except _HttpError as exc:
                response = exc.response
            except Exception:  # noqa: BLE001 - an emulator bug: answer 500, keep it for the test
                text = traceback.format_exc()
                with self._lock:
                    self.handler_errors.append(f"{request.method} {request.path}\n{text}")
                response = arm_error(500, "EmulatorBug", text.strip().splitlines()[-1])
        self._record(
            sequence,
            RecordedRequest(
                route=name,
                method=request.method,
                host=request.host,
                path=normalize_path(request.path),
                query=parse_query(request.query_string.decode("latin-1")),
                headers=dict(request.headers.items()),
                body_size=len(body),
                status=response.status_code,
                fault="status" if fault is not None else ("delay" if delay is not None else None),
                params=params,
                started=started,
            ),
        )
        return response(environ, start_response)

    def _refuse_credentials(self, route: str, request: Request) -> Response | None:
        """401/403 when a request lacks what the real service would insist on."""
        if route == "discovery":
            return None  # the SDK asks discovery without credentials, as the service allows
        if route.startswith("blob."):
            # A SAS (snapshots, artifacts, Sas datastores) or a SharedKey signature of the
            # emulator's account (AccountKey datastores); the signature itself is not checked.
            scheme, _, signature = request.headers.get("Authorization", "").partition(" ")
            shared_key = scheme == "SharedKey" and signature.startswith(self.storage_account + ":")
            if "sig" not in request.args and not shared_key:
                return _storage_error(
                    403,
                    "AuthenticationFailed",
                    "Server failed to authenticate the request (no SAS, no SharedKey).",
                )
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        claims = _jwt_claims(token) if scheme.lower() == "bearer" else None
        if claims is None:
            return arm_error(
                401, "AuthenticationFailed", "Authentication failed: no valid bearer token."
            )
        if float(claims.get("exp", 0)) < time.time():
            return arm_error(401, "ExpiredAuthenticationToken", "The access token has expired.")
        return None

    # ---- routes ------------------------------------------------------------------------------

    def _add_routes(self) -> None:
        add = self._router.add
        # ARM: the endpoint in the auth object's cloud
        add("arm.workspace.get", "GET", _WS, self._arm_workspace_get)
        add("arm.compute.put", "PUT", _WS + "/computes/{compute}", self._arm_compute_put)
        add("arm.compute.patch", "PATCH", _WS + "/computes/{compute}", self._arm_compute_patch)
        add("arm.compute.get", "GET", _WS + "/computes/{compute}", self._compute_get)
        add(
            "arm.compute.operation",
            "GET",
            "/subscriptions/{subscription}"
            + PROVIDER
            + "/locations/{location}/computeOperationsStatus/{operation}",
            self._arm_compute_operation,
        )
        # discovery and the compute RP (the workspace's discoveryUrl, then its "api" URL)
        add("discovery", "GET", "/discovery", self._discovery)
        add("compute.get", "GET", "/rp/workspaces" + _WS + "/computes/{compute}", self._compute_get)
        add("compute.list", "GET", "/rp/workspaces" + _WS + "/computes", self._compute_list)
        # environments (the workspace's "api" URL, like run history)
        environments = "/environment/v1.0" + _WS + "/environments/{environment}"
        add("environment.get.latest", "GET", environments, self._environment_get)
        add("environment.get", "GET", environments + "/versions/{version}", self._environment_get)
        # datastores (the workspace's "api" URL)
        datastores = "/datastore/v1.0" + _WS
        add("datastore.list", "GET", datastores + "/datastores", self._datastore_list)
        add("datastore.get", "GET", datastores + "/datastores/{datastore}", self._datastore_get)
        add("datastore.get_default", "GET", datastores + "/default", self._datastore_get_default)
        # registered datasets (v1): by name, then the definition the SDK fetches for it
        add(
            "dataset.get_by_name",
            "GET",
            "/dataset/v1.0" + _WS + "/datasets/query/name={dataset}",
            self._dataset_get_by_name,
        )
        add(
            "data.dataversion.get",
            "GET",
            "/data/v1.0" + _WS + "/dataversion/{dataset}/versions/{version}",
            self._dataversion_get,
        )
        # run history: experiments and runs
        add(
            "history.experiment.query",
            "POST",
            _HISTORY + "/experiments:query",
            self._experiment_query,
        )
        add(
            "history.run.query",
            "POST",
            _HISTORY + "/experiments/{experiment}/runs:query",
            self._run_query,
        )
        add(
            "history.experiment.get",
            "GET",
            _HISTORY + "/experiments/{experiment}",
            self._experiment_get,
        )
        add(
            "history.experiment.create",
            "POST",
            _HISTORY + "/experiments/{experiment}",
            self._experiment_create,
        )
        add(
            "history.experiment.get_by_id",
            "GET",
            _HISTORY + "/experimentids/{experiment_id}",
            self._experiment_get_by_id,
        )
        for prefix, suffix in (
            ("/experiments/{experiment}", ""),
            ("/experimentids/{experiment_id}", ".by_id"),
        ):
            runs = _HISTORY + prefix + "/runs/{run_id}"
            add("history.run.get" + suffix, "GET", runs, self._run_get)
            add("history.run.patch" + suffix, "PATCH", runs, self._run_patch)
            add("history.run.details" + suffix, "GET", runs + "/details", self._run_details)
        add("history.run.get.workspace", "GET", _HISTORY + "/runs/{run_id}", self._run_get)
        add(
            "history.run.metricsingest_wait",
            "GET",
            _HISTORY + "/experiments/{experiment}/runs/{run_id}/metricsingest/wait",
            self._metrics_ingest_wait,
        )
        add(
            "history.run.events",
            "POST",
            _HISTORY + "/experiments/{experiment}/runs/{run_id}/events",
            self._run_event,
        )
        # content: snapshots (the blob uploads are on the blob host, below)
        content = _WS + "/snapshots"
        add(
            "content.snapshot.latest",
            "GET",
            "/content/v1.0" + content + "/latest/metadata",
            self._snapshot_latest,
        )
        add(
            "content.snapshot.getblob",
            "POST",
            "/content/v2.0" + content + "/getblob",
            self._snapshot_getblob,
        )
        add(
            "content.snapshot.create",
            "POST",
            "/content/v2.0" + content + "/{snapshot}",
            self._snapshot_create,
        )
        # execution
        execution = "/execution/v1.0" + _WS + "/experiments/{experiment}"
        add(
            "execution.snapshotrun", "POST", execution + "/snapshotrun", self._execution_snapshotrun
        )
        add("execution.cancel", "POST", execution + "/runId/{run_id}/cancel", self._run_cancel)
        # metric service, v2
        metric = "/metric/v2.0" + _WS + "/runs/{run_id}"
        add("metric.list", "POST", metric + "/list", self._metric_list)
        add("metric.full", "POST", metric + "/full", self._metric_full)
        add("metric.batch", "POST", metric + "/batch", self._metric_batch)
        # artifacts (the specific prefixes first: {origin} would match them too)
        add(
            "artifact.list_prefix",
            "GET",
            _ARTIFACTS + "/prefix/contentinfo/{origin}/{container}/{artifact_path}",
            self._artifact_list_prefix,
        )
        add(
            "artifact.contentinfo",
            "GET",
            _ARTIFACTS + "/contentinfo/{origin}/{container}/{artifact_path}",
            self._artifact_contentinfo,
        )
        add(
            "artifact.content",
            "GET",
            _ARTIFACTS + "/content/{origin}/{container}/{artifact_path}",
            self._artifact_content,
        )
        add("artifact.list", "GET", _ARTIFACTS + "/{origin}/{container}", self._artifact_list)
        # blob storage ({account}.blob.{suffix})
        add("blob.put", "PUT", "/{container}/{blob_path}", self._blob_put, blob=True)
        add("blob.head", "HEAD", "/{container}/{blob_path}", self._blob_head, blob=True)
        add("blob.get", "GET", "/{container}/{blob_path}", self._blob_get, blob=True)
        add("blob.list", "GET", "/{container}", self._blob_list, blob=True)

    # ---- lookups -----------------------------------------------------------------------------

    def _find_workspace(self, params: Mapping[str, str]) -> WorkspaceState:
        key = (
            params["subscription"].lower(),
            params["resource_group"].lower(),
            params["workspace"].lower(),
        )
        workspace = self._workspaces.get(key)
        if workspace is None:
            raise _HttpError(
                arm_error(
                    404,
                    "ResourceNotFound",
                    "The Resource 'Microsoft.MachineLearningServices/workspaces/"
                    f"{params['workspace']}' under resource group '{params['resource_group']}' "
                    "was not found. For more details please go to "
                    "https://aka.ms/ARMResourceNotFoundFix",
                )
            )
        return workspace

    def _experiment(
        self, workspace: WorkspaceState, name: str, *, create: bool
    ) -> ExperimentState | None:
        experiment = workspace.experiments.get(name.lower())
        if experiment is None and create:
            experiment = ExperimentState(
                name=name, experiment_id=str(uuid.uuid4()), workspace=workspace
            )
            workspace.experiments[name.lower()] = experiment
        return experiment

    def _new_run(
        self, experiment: ExperimentState, program: RunProgram, *, run_id: str | None = None
    ) -> RunState:
        if run_id is None:
            stamp = int(datetime.now(timezone.utc).timestamp())
            run_id = f"{experiment.name}_{stamp}_{uuid.uuid4().hex[:8]}"
        run = RunState(
            run_id=run_id,
            experiment=experiment,
            program=program,
            run_number=next(self._run_numbers),
            data_container_id=f"dcid.{run_id}",
        )
        self._runs[run_id] = run
        return run

    def _find_run(self, call: _Call) -> RunState:
        workspace = self._find_workspace(call.params)
        run = self._runs.get(call.params["run_id"])
        if run is None or run.experiment.workspace is not workspace:
            raise _HttpError(
                service_error(
                    404, "UserError", f"Run {call.params['run_id']} was not found", inner="NotFound"
                )
            )
        return run

    # ---- ARM: workspace and discovery --------------------------------------------------------

    def _arm_workspace_get(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            return json_response(
                200,
                workspace_payload(
                    workspace,
                    tenant_id=self.tenant_id,
                    storage_account=self.storage_account,
                    discovery_url=self.discovery_url,
                    api_host=f"127.0.0.1:{self.port}",
                ),
            )

    def _discovery(self, call: _Call) -> Response:  # noqa: ARG002 - the handler signature
        # Every service at the emulator (the SDK joins its own paths to these).
        keys = (
            "api",
            "catalog",
            "experimentation",
            "gallery",
            "history",
            "hyperdrive",
            "labeling",
            "modelmanagement",
            "pipelines",
            "studio",
        )
        return json_response(200, dict.fromkeys(keys, self.url))

    # ---- compute -----------------------------------------------------------------------------

    def _compute_json(self, workspace: WorkspaceState, compute: ComputeState) -> dict[str, Any]:
        return compute_payload(
            workspace, compute, tenant_id=self.tenant_id, object_id=self.object_id
        )

    def _compute_get(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            compute = workspace.computes.get(call.params["compute"].lower())
            if compute is None:
                return _compute_not_found(workspace, call.params["compute"])
            self._advance_on_read(compute)
            return json_response(200, self._compute_json(workspace, compute))

    def _advance_on_read(self, compute: ComputeState) -> None:
        # Provisioning also moves on for clients that poll the compute itself rather than the
        # async operation (as mlboot does): each lookup after the SDK's own one right after the
        # PUT counts as time passing, one step per lookup.
        for operation in self._operations.values():
            if operation.compute is compute and operation.current not in TERMINAL_OPERATION_STATES:
                operation.reads += 1
                if operation.reads > 1:
                    operation.index = min(operation.index + 1, len(operation.states) - 1)
                    _apply_operation_state(operation)

    def _compute_list(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            values = [self._compute_json(workspace, c) for c in workspace.computes.values()]
            return json_response(200, {"value": values})

    def _start_operation(
        self, workspace: WorkspaceState, compute: ComputeState, program: ProvisioningProgram
    ) -> str:
        operation = OperationState(
            operation_id=str(uuid.uuid4()),
            compute=compute,
            states=list(program.states),
            errors=program.errors,
        )
        self._operations[operation.operation_id] = operation
        _apply_operation_state(operation)
        # api-version in the URL: the SDK then adds none of its own
        return (
            f"{self.url}/subscriptions/{workspace.subscription_id}{PROVIDER}/locations/"
            f"{workspace.location}/computeOperationsStatus/{operation.operation_id}"
            "?api-version=2021-01-01&service=new"
        )

    def _arm_compute_put(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name = call.params["compute"]
            if not _COMPUTE_NAME.match(name):
                return arm_error(
                    400,
                    "ValidationError",
                    f"Compute name '{name}' is invalid: it must be 3 to 24 characters long, "
                    "contain only "
                    "letters, digits and '-', start with a letter and end with a letter or digit.",
                )
            body = call.json() or {}
            props = body.get("properties") or {}
            inner = props.get("properties") or {}
            scale = inner.get("scaleSettings") or {}
            idle = parse_iso_duration(scale.get("nodeIdleTimeBeforeScaleDown"))
            priority = inner.get("vmPriority") or "dedicated"
            compute = ComputeState(
                name=name,
                kind=props.get("computeType") or "AmlCompute",
                vm_size=(inner.get("vmSize") or "STANDARD_NC6").upper(),
                vm_priority="LowPriority" if priority.lower() == "lowpriority" else "Dedicated",
                min_nodes=int(scale.get("minNodeCount") or 0),
                max_nodes=int(scale.get("maxNodeCount") or 4),
                idle_seconds=1800 if idle is None else idle,
                provisioning_state="Creating",
                subnet_id=(inner.get("subnet") or {}).get("id"),
                location=props.get("computeLocation") or body.get("location") or workspace.location,
                tags=body.get("tags"),
                description=props.get("description"),
                remote_login_port_public_access=inner.get("remoteLoginPortPublicAccess")
                or "Enabled",
                last_request_body=body,
            )
            existed = name.lower() in workspace.computes
            workspace.computes[name.lower()] = compute
            program = self._provisioning.pop(name.lower(), None) or ProvisioningProgram(
                ["Creating", "Succeeded"], []
            )
            operation_url = self._start_operation(workspace, compute, program)
            return json_response(
                200 if existed else 201,
                self._compute_json(workspace, compute),
                {"Azure-AsyncOperation": operation_url},
            )

    def _arm_compute_patch(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            compute = workspace.computes.get(call.params["compute"].lower())
            if compute is None:
                return _compute_not_found(workspace, call.params["compute"])
            body = call.json() or {}
            compute.last_request_body = body
            scale = ((body.get("properties") or {}).get("properties") or {}).get(
                "scaleSettings"
            ) or {}
            if scale.get("minNodeCount") is not None:
                compute.min_nodes = int(scale["minNodeCount"])
            if scale.get("maxNodeCount") is not None:
                compute.max_nodes = int(scale["maxNodeCount"])
            idle = parse_iso_duration(scale.get("nodeIdleTimeBeforeScaleDown"))
            if idle is not None:
                compute.idle_seconds = idle
            program = self._provisioning.pop(compute.name.lower(), None) or ProvisioningProgram(
                ["Updating", "Succeeded"], []
            )
            operation_url = self._start_operation(workspace, compute, program)
            return json_response(
                200, self._compute_json(workspace, compute), {"Azure-AsyncOperation": operation_url}
            )

    def _arm_compute_operation(self, call: _Call) -> Response:
        with self._lock:
            operation = self._operations.get(call.params["operation"])
            if operation is None:
                return arm_error(
                    404, "NotFound", f"Operation {call.params['operation']} was not found"
                )
            operation.polls += 1
            operation.index = min(operation.index + 1, len(operation.states) - 1)
            _apply_operation_state(operation)
            state = operation.current
            status = state if state in TERMINAL_OPERATION_STATES else "InProgress"
            body: dict[str, Any] = {
                "id": call.request.base_url,
                "name": operation.operation_id,
                "status": status,
                "startTime": operation.compute.modified_on,
            }
            if status == "Failed":
                errors = operation.errors or [
                    {"error": {"code": "InternalServerError", "message": "Provisioning failed"}}
                ]
                body["error"] = copy.deepcopy(errors[0]["error"])
            if status in TERMINAL_OPERATION_STATES:
                body["endTime"] = utc_now()
            return json_response(200, body)

    # ---- datastores ---------------------------------------------------------------------------

    def _datastore_json(self, datastore: DatastoreState, *, include_secret: bool) -> dict[str, Any]:
        # The SDK builds "https://{account}.blob.{endpoint}": the port rides on the endpoint.
        endpoint = f"{self.blob_suffix}:{self.port}"
        return datastore_dto(datastore, endpoint=endpoint, include_secret=include_secret)

    def _datastore_not_found(self, workspace: WorkspaceState, name: str) -> Response:
        return service_error(
            404,
            "UserError",
            f"DataStore {name} was not found in workspace {workspace.name}.",
            inner="NotFound",
        )

    def _datastore_get(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name = call.params["datastore"]
            datastore = workspace.datastores.get(name.lower())
            if datastore is None:
                return self._datastore_not_found(workspace, name)
            return json_response(200, self._datastore_json(datastore, include_secret=True))

    def _datastore_get_default(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            datastore = workspace.datastores.get(workspace.default_datastore.lower())
            if datastore is None:
                return self._datastore_not_found(workspace, workspace.default_datastore)
            return json_response(200, self._datastore_json(datastore, include_secret=True))

    def _datastore_list(self, call: _Call) -> Response:
        # One page (no continuation token); credentials only with includeSecret=true (the SDK
        # asks for them), as the service lists them.
        include_secret = call.request.args.get("includeSecret", "").lower() == "true"
        with self._lock:
            workspace = self._find_workspace(call.params)
            values = [
                self._datastore_json(d, include_secret=include_secret)
                for d in workspace.datastores.values()
            ]
            return json_response(200, {"value": values, "continuationToken": None})

    # ---- datasets ----------------------------------------------------------------------------

    def _dataset_get_by_name(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name = call.params["dataset"]
            versions = workspace.datasets.get(name, {})
            wanted = call.request.args.get("versionId")
            version = int(wanted) if wanted and wanted.isdigit() else max(versions, default=None)
            if version not in versions:
                which = f" (version {wanted})" if wanted else ""
                return service_error(
                    404, "UserError", f"Dataset {name}{which} was not found.", inner="NotFound"
                )
            return json_response(200, dataset_dto(versions[version]))

    def _dataversion_get(self, call: _Call) -> Response:
        # The SDK asks "unregistered-{savedId}" for a v1 dataset's definition, and "{name}" (a
        # v2 data asset) after a v1 lookup failed; only the first is served.
        with self._lock:
            workspace = self._find_workspace(call.params)
            wanted = call.params["dataset"]
            for versions in workspace.datasets.values():
                for dataset in versions.values():
                    if wanted == f"unregistered-{dataset.saved_id}":
                        definition = f"paths:\n- folder: {dataset.uri}\n"
                        return json_response(
                            200,
                            {
                                "legacyDataflow": definition,
                                "dataVersion": None,
                                "dataContainer": None,
                            },
                        )
            return service_error(
                404, "UserError", f"Data version {wanted} was not found.", inner="NotFound"
            )

    # ---- run history: experiments ------------------------------------------------------------

    def _environment_get(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            name = urllib.parse.unquote(call.params["environment"])
            versions = workspace.environments.get(name, {})
            version = call.params.get("version")
            if version is None and versions:
                version = max(versions, key=lambda v: (v.isdigit(), int(v) if v.isdigit() else v))
            if version not in versions:
                which = f" version {version}" if version else ""
                return service_error(
                    404,
                    "UserError",
                    f"Environment {name}{which} not found in workspace {workspace.name}.",
                    inner="NotFound",
                )
            return json_response(200, versions[version])

    def _experiment_query(self, call: _Call) -> Response:
        # Experiment.list: POST .../experiments:query {"filter": "name eq 'x'", ...}, one page.
        with self._lock:
            workspace = self._find_workspace(call.params)
            self.query_bodies.append(call.json() or {})
            wanted = _filter_value(call.json(), "name")
            found = [
                experiment_dto(experiment)
                for experiment in workspace.experiments.values()
                if wanted is None or experiment.name.lower() == wanted.lower()
            ]
            return json_response(200, {"value": found, "continuationToken": None})

    def _run_query(self, call: _Call) -> Response:
        # Run.list: POST .../experiments/{name}/runs:query {"filter", "orderBy", "top"}; the runs
        # newest first, at most "top" of them, without moving any run's status on.
        with self._lock:
            workspace = self._find_workspace(call.params)
            body = call.json() or {}
            self.query_bodies.append(body)
            experiment = self._experiment(workspace, call.params["experiment"], create=False)
            if experiment is None:
                return _experiment_not_found(call)
            status = _filter_value(body, "Status")
            runs = [
                run
                for run in self._runs.values()
                if run.experiment is experiment and (status is None or run.status == status)
            ]
            # "orderby": "StartTimeUtc desc"; a run not started yet sorts by its creation.
            runs.sort(
                key=lambda run: (run.start_time_utc or run.created_utc, run.run_number),
                reverse=True,
            )
            top = body.get("top")
            if isinstance(top, int) and top > 0:
                runs = runs[:top]
            return json_response(
                200,
                {
                    "value": [self._run_json(run, run.status) for run in runs],
                    "continuationToken": None,
                },
            )

    def _experiment_get(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            experiment = self._experiment(workspace, call.params["experiment"], create=False)
            if experiment is None:
                return _experiment_not_found(call)
            return json_response(200, experiment_dto(experiment))

    def _experiment_create(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            experiment = self._experiment(workspace, call.params["experiment"], create=True)
            assert experiment is not None
            return json_response(200, experiment_dto(experiment))

    def _experiment_get_by_id(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            for experiment in workspace.experiments.values():
                if experiment.experiment_id == call.params["experiment_id"]:
                    return json_response(200, experiment_dto(experiment))
            return service_error(404, "UserError", "Experiment not found.", inner="NotFound")

    # ---- content: snapshots ------------------------------------------------------------------

    def _snapshot_latest(self, call: _Call) -> Response:
        with self._lock:
            self._find_workspace(call.params)
        # No "latest" snapshot: the SDK diffs against an empty tree and uploads every file.
        return json_response(200, {"id": None, "root": {}})

    def _blob_url(self, container: str, blob_name: str) -> str:
        expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sas = f"sv=2019-07-07&sr=b&sig=emulated&se={quote(expiry)}&sp=rcw"
        return f"https://{self.blob_host}:{self.port}/{container}/{quote(blob_name)}?{sas}"

    def _snapshot_getblob(self, call: _Call) -> Response:
        with self._lock:
            self._find_workspace(call.params)
            names = list((call.json() or {}).get("FileNames") or [])
            batch = uuid.uuid4().hex
            nodes = []
            for name in names:
                blob_name = f"{batch}/{name}"
                self._upload_names[f"snapshots/{blob_name}"] = name
                nodes.append({"fullName": name, "blobUri": self._blob_url("snapshots", blob_name)})
            return json_response(200, {"fileNodes": nodes})

    def _snapshot_create(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            body = call.json() or {}
            snapshot = SnapshotState(
                snapshot_id=call.params["snapshot"],
                commit_body=body,
                parent_id=body.get("ParentSnapshotId"),
                tree_paths=sorted(_tree_file_paths(body.get("DirTreeNode") or {})),
            )
            for revision in (body.get("FileRevisionList") or {}).get("FileNodes") or []:
                blob_key = unquote(urlsplit(revision["BlobUri"]).path).lstrip("/")
                if blob_key in self._upload_names:
                    snapshot.requested_files.append(self._upload_names[blob_key])
                content = self._blobs.get(blob_key)
                if content is not None:
                    snapshot.files[revision["FullName"]] = content
            self._snapshots[snapshot.snapshot_id] = snapshot
            return json_response(
                200,
                {
                    "id": snapshot.snapshot_id,
                    "parentSnapshotId": snapshot.parent_id,
                    "tags": body.get("Tags"),
                    "properties": body.get("Properties"),
                    "createdBy": {"userObjectId": self.object_id, "userTenantId": self.tenant_id},
                    "createdTime": utc_now(),
                    "root": body.get("DirTreeNode"),
                    "workspaceId": workspace.workspace_id,
                },
            )

    # ---- blob storage ------------------------------------------------------------------------

    @staticmethod
    def _blob_key(call: _Call) -> str:
        return f"{call.params['container']}/{call.params['blob_path']}"

    def _blob_put(self, call: _Call) -> Response:
        if call.request.headers.get("x-ms-blob-type") != "BlockBlob" or "comp" in call.request.args:
            return _storage_error(
                400,
                "UnsupportedHeader",
                "The emulator supports single-shot BlockBlob uploads only.",
            )
        sent_md5 = call.request.headers.get("Content-MD5")
        if sent_md5 and sent_md5 != _md5(call.body):
            return _storage_error(
                400, "Md5Mismatch", "The MD5 value specified in the request did not match."
            )
        with self._lock:
            # upload_blob(overwrite=False) sends If-None-Match: * (create only).
            if call.request.headers.get("If-None-Match") == "*" and (
                self._blob_key(call) in self._blobs
            ):
                return _storage_error(
                    409, "BlobAlreadyExists", "The specified blob already exists."
                )
            self._blobs[self._blob_key(call)] = call.body
        response = Response(status=201)
        response.headers.update(_blob_headers(call.body))
        response.headers["x-ms-request-server-encrypted"] = "true"
        response.headers["Content-Length"] = "0"
        return response

    def _blob_head(self, call: _Call) -> Response:
        with self._lock:
            content = self._blobs.get(self._blob_key(call))
        if content is None:
            response = Response(status=404)
            response.headers["x-ms-error-code"] = "BlobNotFound"
            return response
        response = Response(status=200)
        response.headers.update(_blob_headers(content))
        response.headers.update(
            {
                "Content-Length": str(len(content)),
                "Content-Type": "application/octet-stream",
                "x-ms-blob-type": "BlockBlob",
                "x-ms-lease-status": "unlocked",
                "x-ms-lease-state": "available",
                "x-ms-server-encrypted": "true",
                "Accept-Ranges": "bytes",
            }
        )
        response.headers["x-ms-creation-time"] = response.headers["Last-Modified"]
        return response

    def _blob_get(self, call: _Call) -> Response:
        with self._lock:
            content = self._blobs.get(self._blob_key(call))
        if content is None:
            return _storage_error(404, "BlobNotFound", "The specified blob does not exist.")
        # The storage client's download_blob asks a range ("x-ms-range: bytes=0-33554431") and
        # reads the blob's size off Content-Range.
        wanted = call.request.headers.get("x-ms-range") or call.request.headers.get("Range")
        found = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
        if found is None:
            response = Response(content, status=200, mimetype="application/octet-stream")
        else:
            start = int(found.group(1))
            end = min(int(found.group(2) or len(content) - 1), len(content) - 1)
            if start >= len(
                content
            ):  # an empty blob too, as the service (the SDK then GETs it whole)
                return _storage_error(
                    416, "InvalidRange", "The range specified is invalid for the current size."
                )
            part = content[start : end + 1]
            response = Response(part, status=206, mimetype="application/octet-stream")
            response.headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        response.headers.update(_blob_headers(content))
        response.headers["x-ms-blob-type"] = "BlockBlob"
        return response

    def _blob_list(self, call: _Call) -> Response:
        # List Blobs (container_client.list_blobs, datastore.download): a flat listing with
        # prefix, maxresults and marker (the marker is the name of the next blob).
        args = call.request.args
        if args.get("restype") != "container" or args.get("comp") != "list":
            return _storage_error(
                400, "UnsupportedQueryParameter", "The emulator lists containers' blobs only."
            )
        container = call.params["container"]
        prefix = args.get("prefix", "")
        marker = args.get("marker", "")
        with self._lock:
            names = sorted(
                (key[len(container) + 1 :], content)
                for key, content in self._blobs.items()
                if key.startswith(container + "/")
            )
        listed = [(n, c) for n, c in names if n.startswith(prefix) and n >= marker]
        limit = int(args.get("maxresults") or 5000)
        page, rest = listed[:limit], listed[limit:]
        body = _blob_listing(
            f"https://{self.blob_host}:{self.port}/",
            container,
            prefix,
            page,
            next_marker=rest[0][0] if rest else "",
        )
        response = Response(body, status=200, mimetype="application/xml")
        response.headers["x-ms-version"] = "2019-07-07"
        return response

    # ---- execution and runs ------------------------------------------------------------------

    def _execution_snapshotrun(self, call: _Call) -> Response:
        with self._lock:
            workspace = self._find_workspace(call.params)
            experiment = self._experiment(workspace, call.params["experiment"], create=True)
            assert experiment is not None
            definition = call.json() or {}
            program = self._run_programs.pop(0) if self._run_programs else RunProgram()
            run = self._new_run(experiment, program, run_id=call.request.args.get("runId") or None)
            run.definition = definition
            run.snapshot_id = definition.get("SnapshotId")
            run.compute_target = (definition.get("Configuration") or {}).get("target")
            run.properties.update(
                {
                    "_azureml.ComputeTargetType": "amlctrain",
                    "ContentSnapshotId": run.snapshot_id or "",
                    "azureml.git.dirty": "False",
                }
            )
            return json_response(200, {"runId": run.run_id, "runType": "azureml.scriptrun"})

    def _cancel_uri(self, run: RunState) -> str:
        return (
            f"{self.url}/execution/v1.0{run.experiment.workspace.arm_id}/experiments/"
            f"{run.experiment.name}/runId/{run.run_id}/cancel"
        )

    def _run_json(self, run: RunState, status: str) -> dict[str, Any]:
        return run_dto(
            run,
            status,
            tenant_id=self.tenant_id,
            object_id=self.object_id,
            cancel_uri=self._cancel_uri(run),
        )

    def _run_get(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            return json_response(200, self._run_json(run, run.read()))

    def _run_patch(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            body = call.json() or {}
            run.patches.append(body)
            run.properties.update(
                {k: str(v) for k, v in (body.get("properties") or {}).items() if v is not None}
            )
            run.tags.update(
                {k: str(v) for k, v in (body.get("tags") or {}).items() if v is not None}
            )
            return json_response(200, self._run_json(run, run.status))

    def _run_details(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            status = run.read()
            artifacts = self._publish_artifacts(run)
            # Run history no longer proxies the common-runtime logs (user_logs/, system_logs/):
            # the SDK lists those through the artifact service itself.
            log_files = {
                path: self._content_uri(run, path)
                for path in artifacts
                if path in run.program.logs and not path.startswith(("user_logs/", "system_logs/"))
            }
            return json_response(
                200, run_details_dto(run, status, log_files=log_files, object_id=self.object_id)
            )

    def _cancel(self, run: RunState) -> None:
        run.cancel_requested = True
        if run.status not in TERMINAL_RUN_STATES:
            run.status_override = "CancelRequested"  # the next read sees it, the one after Canceled

    def _run_cancel(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            self._cancel(run)
            return json_response(200, {"runId": run.run_id, "status": run.status})

    def _run_event(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            if str((call.json() or {}).get("name", "")).lower().endswith("canceled"):
                self._cancel(run)
            return json_response(200, {})

    def _metrics_ingest_wait(self, call: _Call) -> Response:
        with self._lock:
            self._find_run(call)
        # 200, not 202: nothing pending, so the SDK's LRO poller ends without polling.
        return json_response(200, {})

    # ---- metrics -----------------------------------------------------------------------------

    def _metric_list(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            values = []
            for name in run.program.metrics:
                metric = metric_v2(run, name)
                assert metric is not None
                values.append(
                    {
                        "metricKey": {"namespace": None, "name": name},
                        "columns": metric["columns"],
                        "properties": metric["properties"],
                    }
                )
            return json_response(
                200, {"value": values, "continuationToken": None, "nextLink": None}
            )

    def _metric_full(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            name = (call.json() or {}).get("metricName")
            metric = metric_v2(run, name) if name else None
            if metric is None:
                return service_error(
                    404, "UserError", f"Metric {name} was not found", inner="NotFound"
                )
            return json_response(200, metric)

    def _metric_batch(self, call: _Call) -> Response:
        with self._lock:
            run = self._find_run(call)
            for item in (call.json() or {}).get("values") or []:
                if item.get("name"):
                    run.logged_metrics.setdefault(item["name"], []).append(item.get("value"))
            return json_response(200, {})

    # ---- artifacts ---------------------------------------------------------------------------

    def _content_uri(self, run: RunState, path: str) -> str:
        return self._blob_url("azureml", f"{_RUN_ORIGIN}/{run.data_container_id}/{path}")

    @staticmethod
    def _visible_artifacts(run: RunState) -> dict[str, bytes]:
        """Artifact path -> content of what the run has produced so far."""
        artifacts: dict[str, bytes] = {}
        if run.started:
            artifacts.update(
                {path: text.encode("utf-8") for path, text in run.program.logs.items()}
            )
        if run.status in TERMINAL_RUN_STATES or run.status == "Finalizing":
            artifacts.update(run.program.outputs)
        return artifacts

    def _publish_artifacts(self, run: RunState) -> dict[str, bytes]:
        """Put the run's visible artifacts in blob storage (where their SAS URLs point)."""
        artifacts = self._visible_artifacts(run)
        for path, content in artifacts.items():
            self._blobs[f"azureml/{_RUN_ORIGIN}/{run.data_container_id}/{path}"] = content
        return artifacts

    def _run_for_container(self, call: _Call) -> RunState:
        workspace = self._find_workspace(call.params)
        container = call.params["container"]
        for run in self._runs.values():
            if run.data_container_id == container and run.experiment.workspace is workspace:
                return run
        raise _HttpError(
            service_error(
                404, "UserError", f"Container {container} was not found", inner="NotFound"
            )
        )

    def _content_info(self, run: RunState, path: str) -> dict[str, Any]:
        return {
            "contentUri": self._content_uri(run, path),
            "origin": _RUN_ORIGIN,
            "container": run.data_container_id,
            "path": path,
        }

    def _artifact_list_prefix(self, call: _Call) -> Response:
        with self._lock:
            run = self._run_for_container(call)
            prefix = call.params["artifact_path"].rstrip("/") + "/"
            artifacts = self._publish_artifacts(run)
            values = [self._content_info(run, p) for p in sorted(artifacts) if p.startswith(prefix)]
            return json_response(
                200, {"value": values, "continuationToken": None, "nextLink": None}
            )

    def _artifact_contentinfo(self, call: _Call) -> Response:
        with self._lock:
            run = self._run_for_container(call)
            path = call.params["artifact_path"]
            if path not in self._publish_artifacts(run):
                return service_error(
                    404, "UserError", f"Artifact {path} was not found", inner="NotFound"
                )
            return json_response(200, self._content_info(run, path))

    def _artifact_content(self, call: _Call) -> Response:
        with self._lock:
            run = self._run_for_container(call)
            content = self._publish_artifacts(run).get(call.params["artifact_path"])
        if content is None:
            return service_error(404, "UserError", "Artifact was not found", inner="NotFound")
        return Response(content, status=200, mimetype="application/octet-stream")

    def _artifact_list(self, call: _Call) -> Response:
        with self._lock:
            run = self._run_for_container(call)
            values = [
                {
                    "artifactId": f"{_RUN_ORIGIN}/{run.data_container_id}/{path}",
                    "origin": _RUN_ORIGIN,
                    "container": run.data_container_id,
                    "path": path,
                    "etag": None,
                    "createdTime": run.created_utc,
                    "dataPath": None,
                }
                for path in sorted(self._publish_artifacts(run))
            ]
            return json_response(
                200, {"value": values, "continuationToken": None, "nextLink": None}
            )


# ---- helpers ---------------------------------------------------------------------------------


def _monotonic() -> float:
    return time.monotonic()


def _make_program(
    status_sequence: Iterable[str],
    *,
    logs: str | Mapping[str, str] | None,
    metrics: Mapping[str, Any] | None,
    outputs: Mapping[str, bytes] | None,
    error: str | Mapping[str, Any] | None,
    warnings: Iterable[str],
) -> RunProgram:
    sequence = list(status_sequence)
    if not sequence:
        raise ValueError("status_sequence must not be empty")
    log_files = (
        {"azureml-logs/70_driver_log.txt": logs} if isinstance(logs, str) else dict(logs or {})
    )
    output_files = {
        (path if path.startswith("outputs/") else f"outputs/{path}"): bytes(content)
        for path, content in (outputs or {}).items()
    }
    if isinstance(error, str):
        error_object: dict[str, Any] | None = {
            "code": "UserError",
            "message": error,
            "messageParameters": {},
            "details": [],
        }
    else:
        error_object = dict(error) if error else None
    return RunProgram(
        status_sequence=sequence,
        logs=log_files,
        metrics=dict(metrics or {}),
        outputs=output_files,
        error=error_object,
        warnings=[{"source": "emulator", "message": text} for text in warnings],
    )


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT (signature not checked, as the SDK does not check it either)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _apply_operation_state(operation: OperationState) -> None:
    compute = operation.compute
    state = operation.current
    compute.provisioning_state = state
    compute.modified_on = utc_now()
    if state == "Failed":
        compute.provisioning_errors = copy.deepcopy(operation.errors) or None
    elif state == "Succeeded":
        compute.provisioning_errors = None
        compute.current_node_count = compute.min_nodes


def _compute_not_found(workspace: WorkspaceState, name: str) -> Response:
    # Any 404 is "not found" to the SDK (ComputeTargetNotFound is its own message).
    return json_response(
        404,
        {
            "error": {
                "code": "NotFound",
                "message": f"Compute with name {name} is not found in workspace {workspace.name}",
                "details": [],
            }
        },
    )


def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    body = fault.body
    if body is None:
        code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}.get(
            fault.status, "EmulatedFault"
        )
        body = {"error": {"code": code, "message": f"Emulated fault: HTTP {fault.status}"}}
    if isinstance(body, (bytes, str)):
        response = Response(body, status=fault.status)
        response.headers.update(headers)
        return response
    return json_response(fault.status, body, headers)


def _md5(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content).digest()).decode("ascii")  # noqa: S324 - Content-MD5


def _blob_headers(content: bytes) -> dict[str, str]:
    now = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return {
        "ETag": f'"0x{hashlib.sha256(content).hexdigest()[:15].upper()}"',
        "Last-Modified": now,
        "Content-MD5": _md5(content),
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-version": "2019-07-07",
        "Date": now,
    }


def _blob_listing(
    endpoint: str,
    container: str,
    prefix: str,
    blobs: list[tuple[str, bytes]],
    *,
    next_marker: str,
) -> str:
    """The List Blobs XML answer (``EnumerationResults``) for ``blobs`` (name, content)."""
    now = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    items = []
    for name, content in blobs:
        etag = _blob_headers(content)["ETag"]
        items.append(
            f"<Blob><Name>{escape(name)}</Name><Properties>"
            f"<Creation-Time>{now}</Creation-Time><Last-Modified>{now}</Last-Modified>"
            f"<Etag>{escape(etag)}</Etag><Content-Length>{len(content)}</Content-Length>"
            "<Content-Type>application/octet-stream</Content-Type>"
            f"<Content-MD5>{_md5(content)}</Content-MD5><BlobType>BlockBlob</BlobType>"
            "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
            "<ServerEncrypted>true</ServerEncrypted></Properties></Blob>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="{escape(endpoint)}" '
        f'ContainerName="{escape(container)}">'
        f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(items)}</Blobs>"
        f"<NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>"
    )


def _storage_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    response = Response(body, status=status, mimetype="application/xml")
    response.headers["x-ms-error-code"] = code
    return response


def _tree_file_paths(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    """File paths of a snapshot DirTreeNode (children keyed by name, 'type' File/Directory)."""
    paths: list[str] = []
    children = node.get("children") or {}
    for child in children.values() if isinstance(children, dict) else children:
        path = f"{prefix}{child.get('name', '')}"
        if child.get("type") == "File":
            paths.append(path)
        else:
            paths.extend(_tree_file_paths(child, path + "/"))
    return paths


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
