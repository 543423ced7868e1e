"""What the emulator remembers: workspaces, computes, experiments, runs, snapshots."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import isodate  # type: ignore[import-untyped]  # an azureml-core dependency, untyped

__all__ = [
    "ComputeState",
    "DatasetState",
    "DatastoreState",
    "ExperimentState",
    "OperationState",
    "ProvisioningProgram",
    "RunData",
    "RunInput",
    "RunOutput",
    "RunProgram",
    "RunState",
    "SnapshotState",
    "WorkspaceState",
    "iso_duration",
    "parse_iso_duration",
    "utc_now",
]

PROVIDER = "/providers/Microsoft.MachineLearningServices"
TERMINAL_RUN_STATES = ("Completed", "Failed", "Canceled")
NOT_STARTED_RUN_STATES = ("NotStarted", "Queued", "Preparing", "Provisioning", "Starting")
TERMINAL_OPERATION_STATES = ("Succeeded", "Failed", "Canceled")


def utc_now() -> str:
    """A timestamp in the format run history answers with."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def iso_duration(seconds: int) -> str:
    """Seconds -> the normalised ISO-8601 duration the service answers with (1800 -> 'PT30M')."""
    if seconds <= 0:
        return "PT0S"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs:
        text += f"{secs}S"
    return text


def parse_iso_duration(text: str | None) -> int | None:
    """'PT1800S' / 'PT30M' -> 1800; empty -> None."""
    if not text:
        return None
    return int(isodate.parse_duration(text).total_seconds())


@dataclass
class ProvisioningProgram:
    """What the next create (or scale update) of one compute goes through."""

    states: list[str]
    errors: list[dict[str, Any]]


@dataclass
class ComputeState:
    """One compute target of a workspace, as the service describes it."""

    name: str
    kind: str = "AmlCompute"
    vm_size: str = "STANDARD_DS3_V2"
    vm_priority: str = "Dedicated"
    min_nodes: int = 0
    max_nodes: int = 4
    idle_seconds: int = 1800
    provisioning_state: str = "Succeeded"
    provisioning_errors: list[dict[str, Any]] | None = None
    current_node_count: int = 0
    subnet_id: str | None = None
    location: str = "westeurope"
    tags: dict[str, str] | None = None
    description: str | None = None
    remote_login_port_public_access: str = "Enabled"
    instance_state: str = "Running"
    created_on: str = field(default_factory=utc_now)
    modified_on: str = field(default_factory=utc_now)
    #: The JSON body of the last PUT or PATCH the SDK sent for this compute.
    last_request_body: dict[str, Any] | None = None


@dataclass
class OperationState:
    """An ARM async operation (``Azure-AsyncOperation``) of a compute create or update."""

    operation_id: str
    compute: ComputeState
    states: list[str]
    errors: list[dict[str, Any]]
    index: int = 0
    polls: int = 0
    #: data-plane lookups of the compute while this operation ran (see Emulator._compute_get)
    reads: int = 0

    @property
    def current(self) -> str:
        return self.states[min(self.index, len(self.states) - 1)]


@dataclass
class RunProgram:
    """How a run behaves: see :meth:`Emulator.program_run`."""

    status_sequence: list[str] = field(
        default_factory=lambda: ["Queued", "Running", "Finalizing", "Completed"]
    )
    logs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, bytes] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class WorkspaceState:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    computes: dict[str, ComputeState] = field(default_factory=dict)  # key: lower-case name
    experiments: dict[str, ExperimentState] = field(default_factory=dict)  # key: lower-case name
    # registered environments: name -> version -> the definition the service returns
    environments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    datastores: dict[str, DatastoreState] = field(default_factory=dict)  # key: lower-case name
    # registered datasets: name -> version -> dataset
    datasets: dict[str, dict[int, DatasetState]] = field(default_factory=dict)
    #: The name of the default datastore (``GET .../default``).
    default_datastore: str = "workspaceblobstore"

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"{PROVIDER}/workspaces/{self.name}"
        )

    def key(self) -> tuple[str, str, str]:
        return (self.subscription_id.lower(), self.resource_group.lower(), self.name.lower())


@dataclass
class DatastoreState:
    """One Azure Blob datastore of a workspace: a container of the emulator's storage account.

    ``credential_type`` is ``AccountKey`` (the SDK signs blob requests with ``SharedKey``),
    ``Sas`` (it appends ``sas_token`` to each URL) or ``None`` (no credential: the SDK refuses to
    upload). Its blobs live in the emulator's blob service under ``container_name``.
    """

    name: str
    container_name: str
    account_name: str
    credential_type: str = "AccountKey"
    account_key: str | None = None
    sas_token: str | None = None
    protocol: str = "https"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class DatasetState:
    """One version of a registered (v1) dataset: files at ``path`` in datastore ``datastore``."""

    name: str
    version: int
    datastore: str
    path: str
    dataset_type: str = "file"
    #: The registration's id (the same for every version of one name).
    registered_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: The saved dataset's id (one per version): what a run definition's ``data`` names.
    saved_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"azureml://datastores/{self.datastore}/paths/{self.path}"


@dataclass
class ExperimentState:
    name: str
    experiment_id: str
    workspace: WorkspaceState
    created_utc: str = field(default_factory=utc_now)


@dataclass
class RunState:
    """One run. Its n-th read (``GET .../runs/{id}`` or ``.../details``) sees
    ``program.status_sequence[n]``; the last status then sticks."""

    run_id: str
    experiment: ExperimentState
    program: RunProgram
    run_number: int
    compute_target: str | None = None
    snapshot_id: str | None = None
    #: The run definition the SDK posted to ``snapshotrun`` (Configuration, SnapshotId, ...).
    definition: dict[str, Any] | None = None
    properties: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    index: int = 0
    status_override: str | None = None
    cancel_requested: bool = False
    #: The status each read was answered with, in order.
    served_statuses: list[str] = field(default_factory=list)
    created_utc: str = field(default_factory=utc_now)
    start_time_utc: str | None = None
    end_time_utc: str | None = None
    #: Bodies of the PATCH requests the SDK sent for this run.
    patches: list[dict[str, Any]] = field(default_factory=list)
    #: Metrics the SDK posted to ``metric/v2.0/.../batch`` (name -> list of values).
    logged_metrics: dict[str, list[Any]] = field(default_factory=dict)
    data_container_id: str = ""

    @property
    def status(self) -> str:
        """The status the next read will see."""
        if self.status_override is not None:
            return self.status_override
        sequence = self.program.status_sequence
        return sequence[min(self.index, len(sequence) - 1)]

    def read(self) -> str:
        """One SDK read: answer the current status, then move one step on."""
        status = self.status
        if self.status_override == "CancelRequested":
            self.status_override = "Canceled"
        elif self.status_override is None:
            self.index = min(self.index + 1, len(self.program.status_sequence) - 1)
        if status not in NOT_STARTED_RUN_STATES and self.start_time_utc is None:
            self.start_time_utc = utc_now()
        if status in TERMINAL_RUN_STATES and self.end_time_utc is None:
            self.end_time_utc = utc_now()
        self.served_statuses.append(status)
        return status

    @property
    def started(self) -> bool:
        return self.start_time_utc is not None


@dataclass
class SnapshotState:
    """One snapshot as committed: the files (path -> bytes) that reached blob storage."""

    snapshot_id: str
    #: Paths the SDK asked upload URLs for (``snapshots/getblob``).
    requested_files: list[str] = field(default_factory=list)
    #: Path -> content of every file uploaded for this snapshot.
    files: dict[str, bytes] = field(default_factory=dict)
    #: Every file path of the directory tree the SDK committed (uploaded or inherited).
    tree_paths: list[str] = field(default_factory=list)
    parent_id: str | None = None
    commit_body: dict[str, Any] | None = None

    @property
    def paths(self) -> set[str]:
        """The uploaded file paths, relative to the source directory, with '/' separators."""
        return set(self.files)


# Placeholders the SDK writes into a run's arguments for its data (core/script_run_config.py and
# data/data_reference.py): a data reference, a dataset input, an output.
_DATA_REFERENCE_ARGUMENT = "$AZUREML_DATAREFERENCE_"
_DATASET_ARGUMENT = "DatasetConsumptionConfig:"
_OUTPUT_ARGUMENT = "DatasetOutputConfig:"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class RunInput:
    """One input of a submitted run, read off its definition.

    ``kind``: ``data_reference`` (``Configuration.dataReferences``: a datastore path), or one of
    ``Configuration.data``: ``dataset`` (a registered or saved dataset, ``dataset_id`` /
    ``dataset_name`` / ``dataset_version`` set), ``data_path`` (a datastore path) or ``uri``
    (``url`` set). ``mode``: ``mount``, ``download`` (or ``direct`` / ``upload`` as the SDK
    wrote it).
    """

    name: str
    kind: str
    mode: str
    datastore: str | None = None
    path: str | None = None
    path_on_compute: str | None = None
    overwrite: bool = False
    dataset_id: str | None = None
    dataset_name: str | None = None
    dataset_version: str | None = None
    url: str | None = None
    #: The entry as the SDK sent it.
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RunOutput:
    """One output of a submitted run (``Configuration.outputData``).

    ``datastore``/``path`` are None when the SDK left the destination to the service (an
    ``OutputFileDatasetConfig`` without ``destination``: a path under the run). ``mode``:
    ``upload`` or ``mount``; ``overwrite`` is set for uploads only.
    """

    name: str
    mode: str
    datastore: str | None = None
    path: str | None = None
    path_on_compute: str | None = None
    overwrite: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RunData:
    """The data sections of a run definition: inputs, outputs, and the arguments naming them."""

    arguments: list[str]
    inputs: dict[str, RunInput]
    outputs: dict[str, RunOutput]

    @classmethod
    def from_definition(cls, definition: dict[str, Any]) -> RunData:
        configuration = definition.get("Configuration") or {}
        inputs: dict[str, RunInput] = {}
        for name, entry in (configuration.get("dataReferences") or {}).items():
            inputs[name] = RunInput(
                name=name,
                kind="data_reference",
                mode=entry.get("mode") or "mount",
                datastore=entry.get("dataStoreName"),
                path=entry.get("pathOnDataStore"),
                path_on_compute=entry.get("pathOnCompute"),
                overwrite=bool(entry.get("overwrite")),
                raw=entry,
            )
        for name, entry in (configuration.get("data") or {}).items():
            location = entry.get("dataLocation") or {}
            dataset = location.get("dataset") or {}
            data_path = location.get("dataPath") or {}
            uri = location.get("uri") or {}
            kind = "dataset" if dataset else ("uri" if uri else "data_path")
            inputs[name] = RunInput(
                name=name,
                kind=kind,
                mode=str(entry.get("mechanism") or "direct").lower(),
                datastore=data_path.get("datastoreName"),
                path=data_path.get("relativePath"),
                path_on_compute=entry.get("pathOnCompute"),
                overwrite=bool(entry.get("overwrite")),
                dataset_id=dataset.get("id"),
                dataset_name=dataset.get("name"),
                dataset_version=None if dataset.get("version") is None else str(dataset["version"]),
                url=uri.get("path"),
                raw=entry,
            )
        outputs: dict[str, RunOutput] = {}
        for name, entry in (configuration.get("outputData") or {}).items():
            data_path = (entry.get("outputLocation") or {}).get("dataPath") or {}
            options = entry.get("additionalOptions") or {}
            upload = options.get("uploadOptions")
            outputs[name] = RunOutput(
                name=name,
                mode=str(entry.get("mechanism") or "mount").lower(),
                datastore=data_path.get("datastoreName"),
                path=data_path.get("relativePath"),
                path_on_compute=options.get("pathOnCompute"),
                overwrite=None if upload is None else bool(upload.get("overwrite")),
                raw=entry,
            )
        arguments = [str(a) for a in configuration.get("arguments") or []]
        return cls(arguments=arguments, inputs=inputs, outputs=outputs)

    def resolve(self, argument: str) -> RunInput | RunOutput | None:
        """The input or output an argument's placeholder stands for (None: a plain argument)."""
        for prefix, table in (
            (_DATA_REFERENCE_ARGUMENT, self.inputs),
            (_DATASET_ARGUMENT, self.inputs),
            (_OUTPUT_ARGUMENT, self.outputs),
        ):
            if argument.startswith(prefix):
                return table.get(argument[len(prefix) :])
        return None

    def after(self, flag: str) -> RunInput | RunOutput | None:
        """The input or output given right after ``flag`` in the arguments (``--data X``)."""
        index = self.arguments.index(flag)
        return self.resolve(self.arguments[index + 1])

    @property
    def unresolved_arguments(self) -> list[str]:
        """Placeholders in the arguments that no data section defines (the run could not
        resolve them on the compute)."""
        unresolved = []
        for argument in self.arguments:
            if argument.startswith((_DATASET_ARGUMENT, _OUTPUT_ARGUMENT)):
                if self.resolve(argument) is None:
                    unresolved.append(argument)
                continue
            # The SDK's own markers are replaced only as whole arguments; inside a longer one a
            # run reads the variable the service sets: $AZUREML_DATAREFERENCE_<n>, $<n>, ${<n>}.
            if _DATASET_ARGUMENT in argument or _OUTPUT_ARGUMENT in argument:
                unresolved.append(argument)
                continue
            for match in _VARIABLE.finditer(argument):
                name = match.group(1) or match.group(2)
                if name.startswith(_DATA_REFERENCE_ARGUMENT[1:]):
                    reference = self.inputs.get(name.removeprefix(_DATA_REFERENCE_ARGUMENT[1:]))
                    if reference is None or reference.kind != "data_reference":
                        unresolved.append(argument)
                        break
        return unresolved
